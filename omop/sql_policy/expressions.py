"""Expressions in the person-local language: typed, total and blind to identifiers.

Three rules, checked on every expression of a cohort query:

* **Opaque identifiers.** ``person_id``, ``person_source_value`` and record ids (``visit_occurrence_id``...)
  appear only as plain output columns, in key equalities (``a.person_id = b.person_id``), ``IS NULL``,
  ``count()``, GROUP BY / PARTITION BY / DISTINCT ON / ORDER BY, and as the left side of a person set.
  No literal, range, arithmetic or function touches them, so a query cannot pick a person by number.
* **Error-free evaluation.** An accepted query cannot fail because of the values it reads, so an error can
  never say something about one person. Operations that could raise are rewritten to total forms with the
  same meaning wherever the original does not fail (division and modulo by zero give NULL; integer
  arithmetic runs in ``numeric``, which does not overflow; day offsets added to dates are clamped to
  ±1,000 years), or refused (casts that can fail, non-literal or invalid patterns, domain-restricted
  maths, dates built from data, scalar subqueries that may return several rows). Literal arguments that
  PostgreSQL would check only when a row reaches them (LIKE and regex patterns, date fields, percentiles)
  are checked here instead.
* **Bounded cost.** Functions whose cost one value can drive (``repeat``, ``lpad`` to a data length,
  ``replace`` with data arguments) are refused or need literal arguments; the number of arithmetic
  operations is capped, which also bounds the size of any ``numeric`` value the query can build.

The domain these guarantees assume is documented in ``docs/query-policy.md``: dates and timestamps between
the years 1 and 100,000 and numeric values below 10^100 in magnitude, which holds for any CDM.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from omop.sql_policy.catalog import NUMBER_TYPES, SqlType
from omop.sql_policy.errors import QueryRejected
from omop.sql_policy.names import pg_name
from omop.sql_policy.person_local import (
    VALUE_OF,
    Field,
    Relation,
    Role,
    Scope,
    strip_parens,
    unify,
    walk_own_scope,
)

if TYPE_CHECKING:
    from omop.sql_policy.person_local import LocalityAnalyser

#: Arithmetic operations on data per query.
MAX_ARITHMETIC = 256
#: Largest number of integer digits an expression may be able to reach (PostgreSQL's numeric allows
#: 131,072); a division by a value that is not a literal may add up to a thousand digits.
MAX_DIGITS = 10_000
DIVISION_DIGITS = 1_000
#: How many times longer than the data it was built from a text value may become.
MAX_TEXT_GROWTH = 64
INT8_MAX = 9_223_372_036_854_775_807
#: How far date arithmetic may move a date, in total: the CDM's dates lie between the years 1 and
#: 100,000, and PostgreSQL's dates and timestamps end at 4713 BC and 294,276 AD, so 1,000 years either
#: way can never leave the range (an error there would depend on the date).
MAX_INTERVAL_YEARS = 1_000
#: Largest day offset that may be added to a date: a column's value is clamped to it.
MAX_DAY_OFFSET = 365_250
MAX_LITERAL_EXPONENT = 30
MAX_LITERAL_DIGITS = 38
MAX_PAD_LENGTH = 1000
MAX_LITERAL_YEAR = 10_000
MAX_PATTERN_LENGTH = 256
MAX_PATTERN_BRANCHES = 32
MAX_REPLACEMENT_LENGTH = 8

_DATE_FIELDS = frozenset(
    {
        "year",
        "month",
        "day",
        "dow",
        "doy",
        "isodow",
        "isoyear",
        "quarter",
        "week",
        "decade",
        "century",
        "millennium",
        "epoch",
        "julian",
    }
)
_TIME_FIELDS = frozenset({"hour", "minute", "second", "milliseconds", "microseconds"})
_TRUNC_UNITS = frozenset(
    {
        "microseconds",
        "milliseconds",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "decade",
        "century",
        "millennium",
    }
)
_INTERVAL_UNITS = {
    "year": 1.0,
    "years": 1.0,
    "mon": 1 / 12,
    "mons": 1 / 12,
    "month": 1 / 12,
    "months": 1 / 12,
    "week": 7 / 365,
    "weeks": 7 / 365,
    "day": 1 / 365,
    "days": 1 / 365,
    "hour": 1 / 8760,
    "hours": 1 / 8760,
    "minute": 1 / 525600,
    "minutes": 1 / 525600,
    "min": 1 / 525600,
    "mins": 1 / 525600,
    "second": 1 / 31536000,
    "seconds": 1 / 31536000,
    "sec": 1 / 31536000,
    "secs": 1 / 31536000,
}
_INTERVAL_PART = re.compile(r"\s*([+-]?\d{1,9}(?:\.\d{1,6})?)\s*([a-z]+)")

# The only regular expressions accepted: literal characters, classes of literal characters, groups,
# alternation, anchors and the ordinary quantifiers. No bounds {m,n}, back-references or flags, which is
# where PostgreSQL's and other engines' syntax differ and where complexity errors come from.
_REGEX_ATOM = re.compile(r"\\[.*+?^$|()\[\]\\/-]|\\[dDwWsS]|[A-Za-z0-9 _,;:'\"%&#@!=<>~/-]|\.")

_ERROR_PRONE = {
    "Ln": "ln() fails on zero and negative values",
    "Log": "log() fails on zero and negative values",
    "Sqrt": "sqrt() fails on negative values",
    "Cbrt": "cbrt() converts to double precision, which can overflow",
    "Exp": "exp() overflows",
    "Pow": "power() overflows and fails on some signs",
    "Repeat": "repeat() lets one value decide how much memory the query takes",
    "WidthBucket": "width_bucket() fails on some bounds and values (the trust computes histograms itself)",
    "SimilarTo": "SIMILAR TO patterns can fail at run time; use LIKE, ILIKE or ~ with a simple pattern",
    "AtTimeZone": "AT TIME ZONE fails for unknown zone names; dates in the CDM have no time zone",
    "StrToDate": "to_date() fails on text that is not a date; write DATE 'YYYY-MM-DD'",
    "StrToTime": "to_timestamp() fails on text that is not a timestamp; write TIMESTAMP '...'",
    "ToNumber": "to_number() fails on text that is not a number",
    "TimestampFromParts": "make_timestamp() fails on out-of-range parts; write TIMESTAMP '...'",
    "TimeFromParts": "make_time() fails on out-of-range parts",
    "MakeInterval": "make_interval() can overflow; write INTERVAL '...'",
    "PercentileCont": "percentile_cont() converts to double precision, which can overflow; "
    "use percentile_disc",
    "ArrayAgg": "arrays are not part of the cohort language; use string_agg or count",
    "StringToArray": "arrays are not part of the cohort language",
    "ArrayPosition": "arrays are not part of the cohort language",
    "ArraySize": "arrays are not part of the cohort language",
    "ArrayToString": "arrays are not part of the cohort language",
    "Bracket": "array subscripts are not part of the cohort language",
    "JustifyDays": "justify_* can overflow intervals",
    "JustifyHours": "justify_* can overflow intervals",
    "JustifyInterval": "justify_* can overflow intervals",
}
_ERROR_PRONE_ANONYMOUS = {
    "make_date": "make_date() fails on out-of-range parts; write DATE 'YYYY-MM-DD'",
    "make_time": "make_time() fails on out-of-range parts",
    "to_date": "to_date() fails on text that is not a date; write DATE 'YYYY-MM-DD'",
    "to_timestamp": "to_timestamp() fails on text that is not a timestamp",
    "regexp_match": "arrays are not part of the cohort language; use ~ for a match",
    "string_to_array": "arrays are not part of the cohort language",
    "array_position": "arrays are not part of the cohort language",
    "cardinality": "arrays are not part of the cohort language",
    "date_part": "use EXTRACT(field FROM value)",
    "to_char": "to_char() is allowed on dates and timestamps with a literal format only",
}

_AGGREGATES = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.Stddev,
    exp.StddevSamp,
    exp.StddevPop,
    exp.Variance,
    exp.VariancePop,
    exp.LogicalAnd,
    exp.LogicalOr,
    exp.GroupConcat,
)
_STATISTICS = (exp.Sum, exp.Avg, exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance, exp.VariancePop)
_RANKING = (exp.RowNumber, exp.Rank, exp.DenseRank)


def _reject(code: str, message: str) -> QueryRejected:
    return QueryRejected(code, message)


def _shown(node: exp.Expression) -> str:
    try:
        text = " ".join(node.sql(dialect="postgres").split())
    except Exception:
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _cast(node: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build(to, dialect="postgres"))


def _decimal() -> exp.DataType:
    return exp.DataType.build("DECIMAL", dialect="postgres")


def _result_digits(kind: type[exp.Expression], a: Field, b: Field, divisor: Decimal | None) -> float:
    """A bound on the integer digits of ``a <op> b`` from bounds on its operands."""
    if kind is exp.Mul:
        return a.digits + b.digits
    if kind is exp.Div:
        if divisor is not None and divisor != 0:
            return a.digits + max(0.0, float(-divisor.adjusted()))
        return a.digits + DIVISION_DIGITS
    if kind is exp.Mod:
        return min(a.digits, b.digits) if b.digits else a.digits
    return max(a.digits, b.digits) + 1


def _is_zero_guard(node: exp.Expression) -> bool:
    node = strip_parens(node)
    if not isinstance(node, exp.Nullif):
        return False
    zero = node.args.get("expression")
    return isinstance(zero, exp.Literal) and not zero.is_string and str(zero.this) == "0"


def _cast_target(node: exp.Expression | None) -> object:
    """The type a cast converts to (a ``DataType.Type``), or None when ``node`` is not a cast."""
    node = strip_parens(node) if node is not None else None
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        if isinstance(to, exp.DataType):
            return to.this
    return None


def _signed_literal(node: exp.Expression | None) -> tuple[int, exp.Literal] | None:
    """A number literal and its sign (optionally negated or parenthesised), else None."""
    if node is None:
        return None
    node = strip_parens(node)
    sign = 1
    if isinstance(node, exp.Neg):
        sign, node = -1, strip_parens(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        return sign, node
    return None


def literal_number(node: exp.Expression | None) -> Decimal | None:
    """The value of a number literal, else None."""
    found = _signed_literal(node)
    if found is None:
        return None
    try:
        return found[0] * Decimal(str(found[1].this))
    except InvalidOperation:
        return None


def literal_int(node: exp.Expression | None) -> int | None:
    """The value of a whole-number literal written without a point or an exponent, else None."""
    found = _signed_literal(node)
    if found is None or not str(found[1].this).isdigit():
        return None
    return found[0] * int(str(found[1].this))


def literal_string(node: exp.Expression | None) -> str | None:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    return None


def interval_years(text: str) -> float | None:
    """The size of an interval literal in years ('30 days', '1 year 6 months'), or None if unreadable."""
    text = text.strip().lower()
    if not text:
        return None
    total, position = 0.0, 0
    while position < len(text):
        match = _INTERVAL_PART.match(text, position)
        if match is None or match.group(2) not in _INTERVAL_UNITS:
            return None
        total += abs(float(match.group(1))) * _INTERVAL_UNITS[match.group(2)]
        position = match.end()
        while position < len(text) and text[position] in " ,":
            position += 1
    return total


def check_regex(pattern: str) -> None:
    """Accept only a small, engine-neutral regular-expression subset that cannot fail or explode."""
    problem = "use letters, digits, '.', character classes [...], groups (...), '|', '^', '$', '*', '+', '?'"
    if len(pattern) > MAX_PATTERN_LENGTH or pattern.count("(") + pattern.count("|") > MAX_PATTERN_BRANCHES:
        raise _reject(
            "invalid_pattern",
            f"regular expressions are limited to {MAX_PATTERN_LENGTH} characters and "
            f"{MAX_PATTERN_BRANCHES} groups or alternatives",
        )
    depth, position, previous_quantifiable = 0, 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "(":
            depth += 1
            previous_quantifiable = False
            position += 1
            continue
        if char == ")":
            depth -= 1
            if depth < 0:
                raise _reject("invalid_pattern", f"unbalanced ')' in regular expression; {problem}")
            previous_quantifiable = True
            position += 1
            continue
        if char in "|^$":
            previous_quantifiable = char == "$"
            position += 1
            continue
        if char in "*+?":
            lazy = char == "?" and position > 0 and pattern[position - 1] in "*+?"
            if not previous_quantifiable and not lazy:
                raise _reject("invalid_pattern", f"a quantifier without anything to repeat; {problem}")
            previous_quantifiable = False
            position += 1
            continue
        if char == "[":
            end = position + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                if pattern[end] in "[\\":
                    raise _reject("invalid_pattern", f"only literal characters inside [...]; {problem}")
                end += 1
            if end >= len(pattern):
                raise _reject("invalid_pattern", f"unterminated [ in regular expression; {problem}")
            _check_class(pattern[position + 1 : end].removeprefix("^"))
            position = end + 1
            previous_quantifiable = True
            continue
        match = _REGEX_ATOM.match(pattern, position)
        if match is None:
            raise _reject("invalid_pattern", f"character {char!r} is not allowed in patterns; {problem}")
        position = match.end()
        previous_quantifiable = True
    if depth != 0:
        raise _reject("invalid_pattern", f"unbalanced '(' in regular expression; {problem}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _reject("invalid_pattern", f"invalid regular expression ({exc})") from None


def _check_class(body: str) -> None:
    """A bracket expression's body: literal characters and ranges a-z, '-' only first or last."""
    index = 0
    while index < len(body):
        if index + 2 < len(body) and body[index + 1] == "-":
            low, high = body[index], body[index + 2]
            if "-" in (low, high) or low > high:
                raise _reject("invalid_pattern", f"invalid range {low}-{high} in a regular expression")
            index += 3
            continue
        if body[index] == "-" and 0 < index < len(body) - 1:
            raise _reject(
                "invalid_pattern", "in [...] a '-' must be first, last or between the ends of one range"
            )
        index += 1


def check_like(pattern: str) -> None:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    if trailing % 2 == 1:
        raise _reject("invalid_pattern", "a LIKE pattern must not end with the escape character \\")


class ExpressionChecker:
    """Types every expression of a scope, enforces opacity and totality, and rewrites to total forms."""

    def __init__(self, analyser: LocalityAnalyser) -> None:
        self.analyser = analyser
        self.arithmetic = 0
        self._in_window = 0

    def check_budget(self) -> None:
        if self.arithmetic > MAX_ARITHMETIC:
            raise _reject(
                "too_complex",
                f"the query has {self.arithmetic} arithmetic operations on data; "
                f"the limit is {MAX_ARITHMETIC}",
            )

    # -- entry points used by the scope analysis -----------------------------------------------------------
    def condition(self, node: exp.Expression, scope: Scope) -> None:
        self.value(node, scope)

    def projection(self, item: exp.Expression, scope: Scope) -> list[tuple[str | None, Field]]:
        from omop.sql_policy.columns import projection_name

        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Star) or (
            isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)
        ):
            if isinstance(item, exp.Alias):
                raise _reject("unsupported_syntax", "a * cannot be renamed")
            qualifier = pg_name(inner.args.get("table")) if isinstance(inner, exp.Column) else None
            columns: list[tuple[str | None, Field]] = []
            for source in scope.sources.values():
                if qualifier is None or source.alias == qualifier:
                    columns.extend(source.columns.items())
            if qualifier is not None and qualifier not in scope.sources:
                raise _reject("unknown_table", f"{qualifier}.* names no table of this query")
            return columns
        f = self.plain_or_value(inner, scope)
        return [(projection_name(item), f)]

    def key_expression(self, item: exp.Expression, scope: Scope, aliases: dict[str, Field]) -> Field:
        """A GROUP BY, DISTINCT ON or PARTITION BY item: identifiers allowed as plain columns."""
        position = literal_int(item)
        if position is not None:
            fields = list(aliases.values())
            return fields[position - 1] if 0 < position <= len(fields) else VALUE_OF[SqlType.OTHER]
        node = strip_parens(item)
        if isinstance(node, exp.Column) and node.args.get("table") is None:
            name = pg_name(node.this) or ""
            if self.analyser.resolve(node, scope) is None and name in aliases:
                return aliases[name]
        return self.plain_or_value(item, scope)

    def ordering(self, ordered: exp.Expression, scope: Scope, aliases: dict[str, Field]) -> None:
        target = ordered.this if isinstance(ordered, exp.Ordered) else ordered
        self.key_expression(target, scope, aliases)

    def literal_count(self, clause: exp.Expression) -> int:
        value = literal_int(
            clause.args.get("count") if isinstance(clause, exp.Fetch) else clause.args.get("expression")
        )
        options = clause.args.get("limit_options")
        extra = [
            k
            for k, v in clause.args.items()
            if k not in ("expression", "count", "limit_options", "direction") and v not in (None, [], False)
        ]
        if (
            value is None
            or value < 0
            or extra
            or (isinstance(options, exp.Expression) and options.args.get("percent"))
        ):
            raise _reject(
                "non_literal_limit", f"{type(clause).__name__.upper()} must be a non-negative integer literal"
            )
        return value

    def has_outer_columns(self, node: exp.Expression, scope: Scope) -> bool:
        for child in walk_own_scope(node):
            if isinstance(child, exp.Column) and not isinstance(child.this, exp.Star):
                ref = self.analyser.resolve(child, scope)
                if ref is not None and ref.scope is not scope:
                    return True
        return False

    def sources_in(self, node: exp.Expression, scope: Scope) -> set[str]:
        found: set[str] = set()
        for child in walk_own_scope(node):
            if isinstance(child, exp.Column) and not isinstance(child.this, exp.Star):
                ref = self.analyser.resolve(child, scope)
                if ref is not None and ref.scope is scope and ref.alias is not None:
                    found.add(ref.alias)
        return found

    # -- the expression walk -------------------------------------------------------------------------------
    def plain_or_value(self, node: exp.Expression, scope: Scope) -> Field:
        """A plain (possibly cast) column keeps its identifier role; anything else must be a value."""
        bare = strip_parens(node)
        while isinstance(bare, exp.Cast):
            bare = strip_parens(bare.this)
        if isinstance(bare, exp.Column):
            return self.expr(node, scope)
        return self.value(node, scope)

    def value(self, node: exp.Expression, scope: Scope) -> Field:
        f = self.expr(node, scope)
        if f.opaque:
            raise _reject(
                "opaque_identifier",
                f"{_shown(node)}: identifiers (person_id, record ids, person_source_value) may only be "
                "output, compared with each other, grouped or counted, never computed with or compared "
                "with values",
            )
        return f

    def number(self, node: exp.Expression, scope: Scope, what: str) -> Field:
        f = self.value(node, scope)
        if f.type not in NUMBER_TYPES and f.type is not SqlType.NULL:
            raise _reject(
                "unsupported_operation", f"{what} needs a number, not {f.type.value} ({_shown(node)})"
            )
        return f

    def expr(self, node: exp.Expression, scope: Scope) -> Field:
        handler = getattr(self, "e_" + type(node).__name__, None)
        if handler is not None:
            result: Field = handler(node, scope)
            return result
        if isinstance(node, exp.Func) and self.trust_allowed(node):
            return self.trust_function(node, scope)
        reason = _ERROR_PRONE.get(type(node).__name__)
        if reason is not None:
            raise _reject("error_prone_function", reason)
        raise _reject(
            "forbidden_function" if isinstance(node, exp.Func) else "unsupported_syntax",
            f"{_shown(node)} is not part of the cohort language",
        )

    def e_Explode(self, node: exp.Expression, scope: Scope) -> Field:
        raise _reject("generated_rows", "unnest makes rows out of arrays and is not allowed")

    e_Unnest = e_Explode
    e_GenerateSeries = e_Explode
    e_ExplodingGenerateSeries = e_Explode

    # leaves
    def e_Column(self, node: exp.Column, scope: Scope) -> Field:
        if isinstance(node.this, exp.Star):
            raise _reject(
                "unsupported_syntax", "* is allowed only as a whole select list item or in count(*)"
            )
        ref = self.analyser.resolve(node, scope)
        if ref is None:
            raise _reject(
                "unknown_column", f"column {_shown(node)} does not exist in the tables of this query"
            )
        return replace(ref.field, constant=False)

    def e_Paren(self, node: exp.Paren, scope: Scope) -> Field:
        return self.expr(node.this, scope)

    def e_Literal(self, node: exp.Literal, scope: Scope) -> Field:
        if node.is_string:
            return Field(SqlType.UNKNOWN, constant=True)
        value = literal_number(node)
        if value is None or not value.is_finite():
            raise _reject("literal_out_of_range", f"number {node.this} cannot be read")
        significant = value.as_tuple().digits
        if value != 0 and (
            abs(value.adjusted()) > MAX_LITERAL_EXPONENT or len(significant) > MAX_LITERAL_DIGITS
        ):
            raise _reject(
                "literal_out_of_range",
                f"number {node.this} is too large or too small for a cohort query "
                f"(at most 1e{MAX_LITERAL_EXPONENT})",
            )
        # PostgreSQL types a whole number beyond bigint as numeric (-9223372036854775808 is a bigint)
        is_int = str(node.this).isdigit() and int(str(node.this)) <= INT8_MAX + 1
        digits = float(max(value.adjusted() + 1, 1))
        return Field(SqlType.INT if is_int else SqlType.NUMERIC, constant=True, digits=digits, literal=True)

    def e_Boolean(self, node: exp.Boolean, scope: Scope) -> Field:
        return Field(SqlType.BOOL, constant=True)

    def e_Null(self, node: exp.Null, scope: Scope) -> Field:
        return Field(SqlType.NULL, constant=True)

    def e_CurrentDate(self, node: exp.Expression, scope: Scope) -> Field:
        return Field(SqlType.DATE, constant=True)

    def e_CurrentTimestamp(self, node: exp.Expression, scope: Scope) -> Field:
        if node.args.get("this") is not None:
            raise _reject("unsupported_syntax", "now() takes no arguments")
        return Field(SqlType.TIMESTAMP, constant=True)

    def e_Interval(self, node: exp.Interval, scope: Scope) -> Field:
        value = node.this
        unit = node.args.get("unit")
        text = literal_string(value) if isinstance(value, exp.Literal) else None
        if text is None and isinstance(value, exp.Literal):
            text = str(value.this)
        if text is None:
            raise _reject("literal_out_of_range", "an INTERVAL must be a literal such as INTERVAL '30 days'")
        if unit is not None:
            text = f"{text} {unit.name}"
        years = interval_years(text)
        if years is None or years > MAX_INTERVAL_YEARS:
            raise _reject(
                "literal_out_of_range",
                f"interval {text!r}: write a literal such as INTERVAL '30 days' of at most "
                f"{MAX_INTERVAL_YEARS} years",
            )
        return Field(SqlType.INTERVAL, constant=True, shift=years, literal=True)

    # logic and comparisons
    def e_Not(self, node: exp.Not, scope: Scope) -> Field:
        inner = strip_parens(node.this)
        if isinstance(inner, exp.Is):
            f = self.e_Is(inner, scope)
            return Field(SqlType.BOOL, constant=f.constant)
        f = self.value(node.this, scope)
        return Field(SqlType.BOOL, constant=f.constant)

    def _logic(self, node: exp.Expression, scope: Scope) -> Field:
        a = self.value(node.this, scope)
        b = self.value(node.expression, scope)
        return Field(SqlType.BOOL, constant=a.constant and b.constant)

    e_And = _logic
    e_Or = _logic
    e_GT = _logic
    e_GTE = _logic
    e_LT = _logic
    e_LTE = _logic

    def _equality(self, node: exp.Expression, scope: Scope) -> Field:
        right = strip_parens(node.expression)
        if isinstance(right, (exp.Any, exp.Anonymous)) and (
            isinstance(right, exp.Any)
            or (pg_name(right.this) if isinstance(right.this, exp.Identifier) else str(right.this).lower())
            == "all"
        ):
            self.value(node.this, scope)
            self.literal_array(right, scope)
            return Field(SqlType.BOOL)
        a = self.expr(node.this, scope)
        b = self.expr(node.expression, scope)
        if isinstance(node, (exp.NullSafeEQ, exp.NullSafeNEQ)) and exp.Null in (
            type(node.this),
            type(node.expression),
        ):
            return Field(SqlType.BOOL)  # IS [NOT] DISTINCT FROM NULL: a null test
        if a.opaque or b.opaque:
            plain = all(isinstance(_uncast(side), exp.Column) for side in (node.this, node.expression))
            if not (a.opaque and b.opaque and plain):
                raise _reject(
                    "opaque_identifier",
                    f"{_shown(node)}: identifiers may be compared only with other identifier columns "
                    "(a.person_id = b.person_id), never with literals or computed values",
                )
        return Field(SqlType.BOOL, constant=a.constant and b.constant)

    e_EQ = _equality
    e_NEQ = _equality
    e_NullSafeEQ = _equality
    e_NullSafeNEQ = _equality

    def literal_array(self, node: exp.Expression, scope: Scope) -> None:
        inner = (
            node.this if isinstance(node, exp.Any) else (node.expressions[0] if node.expressions else None)
        )
        inner = strip_parens(inner) if inner is not None else None
        if not isinstance(inner, exp.Array) or (
            isinstance(node, exp.Anonymous) and len(node.expressions) != 1
        ):
            raise _reject(
                "cross_person_subquery"
                if isinstance(inner, (exp.Subquery, exp.Select))
                else "unsupported_syntax",
                "= ANY / <> ALL take a literal ARRAY[...] here; for a subquery use IN (SELECT ...)",
            )
        for item in inner.expressions:
            if not self.value(item, scope).constant:
                raise _reject("unsupported_syntax", "ARRAY[...] may hold literals only")

    def e_Is(self, node: exp.Is, scope: Scope) -> Field:
        f = self.expr(node.this, scope)
        target = node.expression
        if f.opaque and not isinstance(target, exp.Null):
            raise _reject("opaque_identifier", f"{_shown(node)}: identifiers may only be tested with IS NULL")
        if not isinstance(target, (exp.Null, exp.Boolean)):
            self.value(target, scope)
        return Field(SqlType.BOOL, constant=f.constant)

    def e_Between(self, node: exp.Between, scope: Scope) -> Field:
        fields = [self.value(node.this, scope)]
        for key in ("low", "high"):
            fields.append(self.value(node.args[key], scope))
        return Field(SqlType.BOOL, constant=all(f.constant for f in fields))

    def e_In(self, node: exp.In, scope: Scope) -> Field:
        query = node.args.get("query")
        if query is not None:
            return self.in_subquery(node, query, scope)
        if node.args.get("unnest") is not None or node.args.get("field") is not None:
            raise _reject("unsupported_syntax", "IN UNNEST(...) is not part of the cohort language")
        left = self.value(node.this, scope)
        constant = left.constant
        for item in node.expressions:
            constant = self.value(item, scope).constant and constant
        return Field(SqlType.BOOL, constant=constant)

    def e_Like(self, node: exp.Expression, scope: Scope) -> Field:
        self.value(node.this, scope)
        pattern = literal_string(node.expression)
        if pattern is None:
            raise _reject("invalid_pattern", "LIKE/ILIKE patterns must be string literals")
        check_like(pattern)
        return Field(SqlType.BOOL)

    e_ILike = e_Like

    def e_RegexpLike(self, node: exp.Expression, scope: Scope) -> Field:
        self.value(node.this, scope)
        if node.args.get("flag") is not None:
            raise _reject(
                "invalid_pattern", "regular-expression flags are not supported; use ~* for case-insensitive"
            )
        pattern = literal_string(node.expression)
        if pattern is None:
            raise _reject("invalid_pattern", "regular expressions must be string literals")
        check_regex(pattern)
        return Field(SqlType.BOOL)

    e_RegexpILike = e_RegexpLike

    # conditionals
    def e_Case(self, node: exp.Case, scope: Scope) -> Field:
        operand = node.args.get("this")
        if operand is not None:
            self.value(operand, scope)
        results: list[Field] = []
        for branch in node.args.get("ifs") or []:
            if not isinstance(branch, exp.If):
                raise _reject("unsupported_syntax", "unexpected CASE branch")
            self.value(branch.this, scope)
            results.append(self.value(branch.args["true"], scope))
        default = node.args.get("default")
        if default is not None:
            results.append(self.value(default, scope))
        return _combined(results, constant=False)

    def _unified(self, node: exp.Expression, scope: Scope) -> Field:
        items = [node.this, *node.expressions] if node.this is not None else list(node.expressions)
        fields = [self.value(item, scope) for item in items]
        return _combined(fields, constant=all(f.constant for f in fields))

    e_Coalesce = _unified
    e_Greatest = _unified
    e_Least = _unified

    def e_Nullif(self, node: exp.Nullif, scope: Scope) -> Field:
        a = self.value(node.this, scope)
        b = self.value(node.expression, scope)
        return replace(a, constant=a.constant and b.constant, literal=False, reference_key=False)

    # arithmetic
    def _arithmetic(self, node: exp.Expression, scope: Scope) -> Field:
        a = self.value(node.this, scope)
        b = self.value(node.expression, scope)
        constant = a.constant and b.constant
        if not constant:
            self.arithmetic += 1
        kind = type(node)
        ta, tb = a.type, b.type
        if SqlType.NULL in (ta, tb):
            return Field(tb if ta is SqlType.NULL else ta, constant=constant)
        if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
            return self._numeric(node, a, b, constant)
        dates = (SqlType.DATE, SqlType.TIMESTAMP)
        if kind in (exp.Add, exp.Sub) and ta is SqlType.DATE and tb is SqlType.INT:
            return self._shifted(SqlType.DATE, a, self._day_offset(node.expression), constant)
        if kind is exp.Add and ta is SqlType.INT and tb is SqlType.DATE:
            return self._shifted(SqlType.DATE, b, self._day_offset(node.this), constant)
        if kind is exp.Sub and ta is SqlType.DATE and tb is SqlType.DATE:
            return Field(SqlType.INT, constant=constant, digits=10)
        if kind is exp.Sub and ta in dates and tb in dates:
            return Field(SqlType.INTERVAL, constant=constant)
        if kind in (exp.Add, exp.Sub) and ta in dates and tb is SqlType.INTERVAL and b.literal:
            return self._shifted(SqlType.TIMESTAMP, a, b.shift, constant)
        if kind is exp.Add and ta is SqlType.INTERVAL and tb in dates and a.literal:
            return self._shifted(SqlType.TIMESTAMP, b, a.shift, constant)
        if kind in (exp.Add, exp.Sub) and ta is SqlType.INTERVAL and tb is SqlType.INTERVAL:
            if a.literal and b.literal and a.shift + b.shift <= MAX_INTERVAL_YEARS:
                return Field(SqlType.INTERVAL, constant=True, shift=a.shift + b.shift, literal=True)
        raise _reject(
            "unsupported_operation",
            f"{_shown(node)}: {ta.value} {_OPERATORS.get(type(node).__name__, '?')} {tb.value} is not "
            "supported in cohort queries (numbers with numbers; dates plus or minus whole days or a "
            "literal INTERVAL; give string literals a type, e.g. DATE '2020-01-01')",
        )

    e_Add = _arithmetic
    e_Sub = _arithmetic
    e_Mul = _arithmetic
    e_Div = _arithmetic
    e_Mod = _arithmetic

    def _numeric(self, node: exp.Expression, a: Field, b: Field, constant: bool) -> Field:
        """Numbers in numeric (no overflow), division and modulo by zero give NULL, sizes bounded.

        Integer division keeps its meaning (truncation towards zero) as ``div()`` on numerics.
        """
        kind = type(node)
        divisor = literal_number(node.expression)
        nonzero = divisor not in (None, 0)
        digits = _result_digits(kind, a, b, divisor)
        if digits > MAX_DIGITS:
            raise _reject(
                "too_complex",
                f"{_shown(node)}: this arithmetic could build numbers of more than {MAX_DIGITS} digits",
            )
        # only literals are folded by the planner; any other constant (now(), EXTRACT(... CURRENT_DATE))
        # is evaluated when a row reaches it, so it must be total like data
        if literal_number(node.this) is not None and divisor is not None:
            if kind in (exp.Div, exp.Mod) and not nonzero and not _is_zero_guard(node.expression):
                node.set("expression", exp.Nullif(this=node.expression, expression=exp.Literal.number(0)))
            both_int = a.type is SqlType.INT and b.type is SqlType.INT and kind is not exp.Div
            return Field(SqlType.INT if both_int else SqlType.NUMERIC, constant=True, digits=digits)
        integer_division = kind is exp.Div and a.type is SqlType.INT and b.type is SqlType.INT
        self._numeric_operands(node, a, b, guard=kind in (exp.Div, exp.Mod) and not nonzero)
        if integer_division:
            node.replace(exp.Cast(this=exp.IntDiv(this=node.this, expression=node.expression), to=_decimal()))
        return Field(SqlType.NUMERIC, digits=digits)

    def _numeric_operands(self, node: exp.Expression, a: Field, b: Field, *, guard: bool) -> None:
        """Cast both operands to numeric (literals excepted) and guard the divisor with NULLIF(b, 0).

        Every operand that is not a bare literal is cast, whatever type the analysis gave it: a cast from
        numeric to numeric costs nothing, and a mistaken type (PostgreSQL types some constants otherwise)
        then cannot leave integer arithmetic that overflows.
        """
        for key in ("this", "expression"):
            operand = node.args[key]
            guarded = key == "expression" and guard
            inner = operand.this if guarded and _is_zero_guard(operand) else operand
            if _cast_target(inner) is not exp.DataType.Type.DECIMAL and literal_number(inner) is None:
                inner = _cast(inner, "DECIMAL")
            if guarded:
                if _is_zero_guard(operand):
                    operand.set("this", inner)
                else:
                    operand = exp.Nullif(this=inner, expression=exp.Literal.number(0))
            else:
                operand = inner
            node.set(key, operand)

    def e_IntDiv(self, node: exp.Expression, scope: Scope) -> Field:
        """``div(a, b)``: integer division of numerics, written by researchers or by the rewrite above."""
        parent = node.parent if isinstance(node.parent, exp.Expression) else None
        if _cast_target(parent) is not exp.DataType.Type.DECIMAL:
            raise _reject("unsupported_syntax", "write integer division as a / b or div(a, b)")
        a = self.number(node.this, scope, "div")
        b = self.number(node.expression, scope, "div")
        divisor = literal_number(node.expression)
        digits = _result_digits(exp.Div, a, b, divisor)
        if digits > MAX_DIGITS:
            raise _reject(
                "too_complex", f"{_shown(node)}: this division could build numbers that are too large"
            )
        self.arithmetic += 1
        self._numeric_operands(node, a, b, guard=divisor in (None, 0))
        return Field(SqlType.NUMERIC, digits=digits)

    def _shifted(self, result: SqlType, date: Field, years: float, constant: bool) -> Field:
        """A date moved by ``years``: the total a chain of additions may move it is bounded too."""
        shift = date.shift + years
        if shift > MAX_INTERVAL_YEARS:
            raise _reject(
                "literal_out_of_range",
                f"date arithmetic may move a date by at most {MAX_INTERVAL_YEARS} years in total "
                "(day offsets from columns count as that much)",
            )
        return Field(result, constant=constant, shift=shift)

    def _day_offset(self, operand: exp.Expression) -> float:
        """Days added to a date: a literal within ±1,000 years, or a data value clamped to that range.

        Returns the most the offset can move a date, in years.
        """
        value = literal_int(operand)
        if value is not None:
            if abs(value) > MAX_DAY_OFFSET:
                raise _reject(
                    "literal_out_of_range", f"a day offset may be at most {MAX_DAY_OFFSET} days ({value})"
                )
            return abs(value) / 365.25
        if _is_clamp(operand):
            return MAX_DAY_OFFSET / 365.25
        built = _cast(
            exp.Least(
                this=exp.Greatest(this=operand.copy(), expressions=[exp.Literal.number(-MAX_DAY_OFFSET)]),
                expressions=[exp.Literal.number(MAX_DAY_OFFSET)],
            ),
            "INT",  # date + bigint has no operator; the clamped value always fits an integer
        )
        clamped = sqlglot.parse_one(built.sql(dialect="postgres"), read="postgres")
        operand.replace(clamped)
        return MAX_DAY_OFFSET / 365.25

    def e_Neg(self, node: exp.Neg, scope: Scope) -> Field:
        f = self.value(node.this, scope)
        if literal_number(node.this) is not None:
            return Field(f.type, constant=True)
        if f.type in NUMBER_TYPES:
            if _cast_target(node.this) is not exp.DataType.Type.DECIMAL:
                node.set("this", _cast(node.this, "DECIMAL"))
            self.arithmetic += 1
            return Field(SqlType.NUMERIC, digits=f.digits)
        raise _reject("unsupported_operation", f"{_shown(node)}: only numbers can be negated")

    def e_DPipe(self, node: exp.DPipe, scope: Scope) -> Field:
        a = self.value(node.this, scope)
        b = self.value(node.expression, scope)
        if SqlType.OTHER in (a.type, b.type):
            raise _reject("unsupported_operation", f"{_shown(node)}: || joins text only")
        return replace(self._grown(node, a.growth + b.growth), constant=a.constant and b.constant)

    # casts
    def e_Cast(self, node: exp.Cast, scope: Scope) -> Field:
        to = node.args.get("to")
        if not isinstance(to, exp.DataType):
            raise _reject("forbidden_type", "unsupported cast")
        source = self.expr(node.this, scope)
        target = to.this
        T = exp.DataType.Type
        has_params = bool(to.expressions)
        # a bare literal is converted when the query is parsed, so a bad one fails for every row alike;
        # anything else (even a CASE of literals) is converted row by row and must not be able to fail
        literal = (
            isinstance(strip_parens(node.this), (exp.Literal, exp.Null))
            or literal_number(node.this) is not None
        )
        if _is_clamp(node):
            return Field(SqlType.INT, digits=7)  # a day offset clamped by the rewrite above
        if source.opaque:
            if target in (T.BIGINT, T.TEXT, T.VARCHAR) and not has_params:
                return Field(SqlType.INT if target is T.BIGINT else SqlType.TEXT, source.role, source.event)
            raise _reject(
                "opaque_identifier", f"{_shown(node)}: identifiers may only be cast to bigint or text"
            )
        result = _TARGETS.get(target)
        if result is SqlType.FLOAT:
            raise _reject(
                "unsafe_cast",
                f"{_shown(node)}: double precision is not part of the cohort language (a numeric meeting it "
                "is converted, which fails beyond 1e308); use numeric, which also has 'NaN' and 'Infinity'",
            )
        if result is None:
            raise _reject(
                "forbidden_type", f"{_shown(node)}: casts to {to.sql(dialect='postgres')} are not allowed"
            )
        if literal:
            years = self.literal_value(strip_parens(node.this), result)
            return Field(result, constant=True, shift=years, literal=True)
        safe = _SAFE_CASTS.get(result, frozenset())
        if source.type is SqlType.UNKNOWN and result is not SqlType.TEXT:
            raise _reject("unsafe_cast", f"{_shown(node)}: text computed by the query cannot be cast safely")
        if source.type not in safe or (has_params and result is not SqlType.TEXT):
            raise _reject(
                "unsafe_cast",
                f"{_shown(node)}: a cast from {source.type.value} to "
                f"{to.sql(dialect='postgres').lower()} can "
                "fail on some values (use round()/trunc() for numbers, EXTRACT for dates, numeric for "
                "arithmetic)",
            )
        if result is SqlType.INT and source.type is SqlType.INT and target is not T.BIGINT:
            raise _reject(
                "unsafe_cast",
                f"{_shown(node)}: narrowing integer casts can overflow; cast to bigint or numeric",
            )
        growth = source.growth if source.type is SqlType.TEXT else 0.0
        return replace(source, type=result, literal=False, reference_key=False, growth=growth)

    def literal_value(self, node: exp.Expression, result: SqlType) -> float:
        """Literal dates and intervals stay in the range where date arithmetic cannot overflow.

        Returns the size of an interval literal in years (0 for anything else).
        """
        text = literal_string(node)
        if text is None:
            return 0.0
        if result is SqlType.INTERVAL:
            years = interval_years(text)
            if years is None or years > MAX_INTERVAL_YEARS:
                raise _reject(
                    "literal_out_of_range",
                    f"interval {text!r}: write a literal such as '30 days' of at most "
                    f"{MAX_INTERVAL_YEARS} years",
                )
            return years
        if result in (SqlType.DATE, SqlType.TIMESTAMP):
            match = re.match(r"\s*(\d+)", text)
            if (match is not None and int(match.group(1)) > MAX_LITERAL_YEAR) or "bc" in text.lower():
                raise _reject(
                    "literal_out_of_range",
                    f"date {text!r} is outside the years 1 to {MAX_LITERAL_YEAR} that cohort queries may use",
                )
        return 0.0

    # subqueries
    def subquery(self, query: exp.Expression, scope: Scope) -> Relation:
        relation = self.analyser.query(query, scope, scope.ctes)
        if relation.person_data:
            scope.reads_person_data = True
        return relation

    def e_Subquery(self, node: exp.Subquery, scope: Scope) -> Field:
        relation = self.subquery(node.this, scope)
        if len(relation.columns) != 1:
            raise _reject("unsupported_syntax", "a subquery used as a value must return one column")
        if relation.person or (relation.person_data and not relation.bound):
            raise _reject(
                "cross_person_subquery",
                f"{_shown(node)}: a subquery over person data must be correlated on the person key "
                "(WHERE x.person_id = <outer>.person_id)",
            )
        if not relation.single_row:
            raise _reject(
                "scalar_subquery_rows",
                f"{_shown(node)}: a subquery used as a value must return at most one row whatever the data: "
                "use an aggregate (max, min, count) or ORDER BY ... LIMIT 1",
            )
        f = relation.columns[0][1]
        role = Role.IDENTIFIER if f.opaque else Role.VALUE
        return replace(f, role=role, constant=False, literal=False, nullable=False, reference_key=False)

    def e_Exists(self, node: exp.Exists, scope: Scope) -> Field:
        relation = self.subquery(node.this, scope)
        if relation.person or (relation.person_data and not relation.bound):
            raise _reject(
                "cross_person_subquery",
                "EXISTS over person data must be correlated on the person key "
                "(EXISTS (SELECT 1 FROM ... x WHERE x.person_id = <outer>.person_id ...))",
            )
        return Field(SqlType.BOOL)

    def in_subquery(self, node: exp.In, query: exp.Expression, scope: Scope) -> Field:
        inner = query.this if isinstance(query, exp.Subquery) else query
        relation = self.subquery(inner, scope)
        left = self.expr(node.this, scope)
        if len(relation.columns) != 1:
            raise _reject("unsupported_syntax", "IN (SELECT ...) must select one column")
        right = relation.columns[0][1]
        if relation.person and not relation.bound:
            if left.nullable:
                raise _reject(
                    "cross_person_subquery",
                    f"{_shown(node)}: a NULL person_id (outer side of a LEFT JOIN) is in no set and in every "
                    "NOT IN set only when the set is empty, which depends on other persons: test the "
                    "person_id of the table you join from",
                )
            if left.role not in (Role.PERSON_KEY, Role.OUTER_KEY) or right.role is not Role.PERSON_KEY:
                raise _reject(
                    "cross_person_subquery",
                    f"{_shown(node)}: a subquery over person data is allowed as a set of persons "
                    "(x.person_id IN (SELECT person_id ...)) or correlated on the person key",
                )
            name = relation.columns[0][0]
            if name is None:
                raise _reject("unnamed_column", "the person set's column needs a name")
            _null_free_person_set(query, name)
            return Field(SqlType.BOOL)
        if relation.person_data and not relation.bound:
            raise _reject(
                "cross_person_subquery", f"{_shown(node)}: subquery over person data without person_id"
            )
        if left.opaque != right.opaque:
            raise _reject(
                "opaque_identifier", f"{_shown(node)}: identifiers may only be matched against identifiers"
            )
        return Field(SqlType.BOOL)

    # functions a trust added to its allowlist: vouched for by its governance team as total and local
    def trust_allowed(self, node: exp.Expression) -> bool:
        extra = self.analyser.extra_functions
        if isinstance(node, exp.Anonymous):
            name = pg_name(node.this) if isinstance(node.this, exp.Identifier) else str(node.this).lower()
            return name in extra
        names: list[str] = type(node).sql_names()  # type: ignore[attr-defined]
        return any(name.lower() in extra for name in names)

    def trust_function(self, node: exp.Expression, scope: Scope) -> Field:
        for value in node.args.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, exp.Expression):
                    self.value(item, scope)
        return Field(SqlType.OTHER)

    # aggregates and windows
    def _aggregate_seen(self, node: exp.Expression, scope: Scope) -> None:
        levels = set()
        for child in walk_own_scope(node):
            if isinstance(child, exp.Column) and not isinstance(child.this, exp.Star):
                ref = self.analyser.resolve(child, scope)
                if ref is not None:
                    levels.add(ref.scope is scope)
        if levels == {False}:
            # PostgreSQL computes an aggregate of outer columns in the outer query, over all its rows
            raise _reject(
                "cross_person_aggregate",
                f"{_shown(node)} aggregates only columns of an enclosing query; aggregate in that query "
                "(grouped by person_id) instead",
            )
        if not self._in_window:
            scope.aggregates.append(node)

    def _aggregate_arguments(self, node: exp.Expression) -> list[exp.Expression]:
        argument = node.this
        if isinstance(argument, exp.Distinct):
            return list(argument.expressions)
        return [argument] if argument is not None else []

    def e_Count(self, node: exp.Count, scope: Scope) -> Field:
        self._aggregate_seen(node, scope)
        for argument in self._aggregate_arguments(node):
            if not isinstance(argument, exp.Star):
                self.plain_or_value(argument, scope)
        for extra in node.expressions or []:
            self.plain_or_value(extra, scope)
        return Field(SqlType.INT, digits=19)

    def _statistic(self, node: exp.Expression, scope: Scope) -> Field:
        self._aggregate_seen(node, scope)
        fields = [self.number(a, scope, type(node).__name__.lower()) for a in self._aggregate_arguments(node)]
        digits = max((f.digits for f in fields), default=0.0)
        if isinstance(node, exp.Sum):
            digits += 10  # one person's rows: far fewer than 10^10
        elif not isinstance(node, exp.Avg):
            digits = 2 * digits + 1  # variances are squares
        if digits > MAX_DIGITS:
            raise _reject(
                "too_complex", f"{_shown(node)}: this aggregate could build numbers that are too large"
            )
        if isinstance(node, exp.Sum) and [f.type for f in fields] == [SqlType.INT]:
            return Field(SqlType.INT, digits=digits)
        return Field(SqlType.NUMERIC, digits=digits)

    e_Sum = _statistic
    e_Avg = _statistic
    e_Stddev = _statistic
    e_StddevSamp = _statistic
    e_StddevPop = _statistic
    e_Variance = _statistic
    e_VariancePop = _statistic

    def _extreme(self, node: exp.Expression, scope: Scope) -> Field:
        self._aggregate_seen(node, scope)
        if node.expressions:
            raise _reject("unsupported_syntax", "min/max take one argument (use least/greatest for several)")
        fields = [self.value(a, scope) for a in self._aggregate_arguments(node)]
        if len(fields) != 1:
            raise _reject("unsupported_syntax", "min/max take one argument")
        return replace(fields[0], constant=False, literal=False, reference_key=False)

    e_Min = _extreme
    e_Max = _extreme

    def _boolean_aggregate(self, node: exp.Expression, scope: Scope) -> Field:
        self._aggregate_seen(node, scope)
        for argument in self._aggregate_arguments(node):
            self.value(argument, scope)
        return Field(SqlType.BOOL)

    e_LogicalAnd = _boolean_aggregate
    e_LogicalOr = _boolean_aggregate

    def e_GroupConcat(self, node: exp.GroupConcat, scope: Scope) -> Field:
        self._aggregate_seen(node, scope)
        argument = node.this
        growth = 0.0
        if isinstance(argument, exp.Order):
            growth = self.value(argument.this, scope).growth
            for ordered in argument.expressions:
                self.value(ordered.this if isinstance(ordered, exp.Ordered) else ordered, scope)
        else:
            for item in self._aggregate_arguments(node):
                growth += self.value(item, scope).growth
        if literal_string(node.args.get("separator")) is None:
            raise _reject("unsupported_syntax", "string_agg needs a string literal separator")
        return self._grown(node, growth + 1)

    def e_Filter(self, node: exp.Filter, scope: Scope) -> Field:
        f = self.expr(node.this, scope)
        where = node.expression
        self.value(where.this if isinstance(where, exp.Where) else where, scope)
        return f

    def e_WithinGroup(self, node: exp.WithinGroup, scope: Scope) -> Field:
        function = node.this
        order = node.expression
        if not isinstance(order, exp.Order) or len(order.expressions) != 1:
            raise _reject("unsupported_syntax", "WITHIN GROUP takes one ORDER BY expression")
        ordered = order.expressions[0]
        f = self.value(ordered.this if isinstance(ordered, exp.Ordered) else ordered, scope)
        if isinstance(function, exp.PercentileDisc):
            fraction = literal_number(function.this)
            if fraction is None or not (0 <= fraction <= 1):
                raise _reject(
                    "literal_out_of_range", "percentile_disc needs a literal fraction between 0 and 1"
                )
        elif not isinstance(function, exp.Mode):
            return self.expr(function, scope)  # percentile_cont and others: refused with their reason
        self._aggregate_seen(node, scope)
        return replace(f, constant=False, literal=False, reference_key=False)

    def e_Window(self, node: exp.Window, scope: Scope) -> Field:
        scope.windows.append(node)
        self._in_window += 1
        try:
            f = self.window_function(node.this, scope)
        finally:
            self._in_window -= 1
        order = node.args.get("order")
        if isinstance(order, exp.Order):
            for ordered in order.expressions:
                self.ordering(ordered, scope, {})
        spec = node.args.get("spec")
        if isinstance(spec, exp.WindowSpec):
            self.frame(spec)
        parent = node.parent if isinstance(node.parent, exp.Expression) else None
        if f.type is SqlType.FLOAT and _cast_target(parent) is not exp.DataType.Type.DECIMAL:
            node.replace(_cast(node.copy(), "DECIMAL"))  # double precision must not meet numerics
            return Field(SqlType.NUMERIC, digits=f.digits)
        return f

    def frame(self, spec: exp.WindowSpec) -> None:
        kind = str(spec.args.get("kind") or "ROWS").upper()
        for key in ("start", "end"):
            bound = spec.args.get(key)
            if bound is None or isinstance(bound, str):
                continue
            value = literal_int(bound)
            if kind == "RANGE" or value is None or value < 0:
                raise _reject(
                    "literal_out_of_range",
                    "window frame offsets must be non-negative integer literals in ROWS or GROUPS mode",
                )
        if spec.args.get("exclude") is not None:
            raise _reject("unsupported_syntax", "EXCLUDE in window frames is not supported")

    def window_function(self, function: exp.Expression, scope: Scope) -> Field:
        if isinstance(function, _RANKING):
            return Field(SqlType.INT, digits=19)
        if isinstance(function, (exp.PercentRank, exp.CumeDist)):
            return Field(SqlType.FLOAT, digits=1)
        if isinstance(function, exp.Ntile):
            n = literal_int(function.this)
            if n is None or n < 1:
                raise _reject("literal_out_of_range", "ntile needs a positive integer literal")
            return Field(SqlType.INT, digits=19)
        if isinstance(function, (exp.Lag, exp.Lead)):
            offset = function.args.get("offset")
            if offset is not None and (
                literal_int(offset) is None or not 0 <= (literal_int(offset) or 0) <= 1000
            ):
                raise _reject(
                    "literal_out_of_range", "lag/lead offsets must be integer literals from 0 to 1000"
                )
            f = self.value(function.this, scope)
            default = function.args.get("default")
            if default is not None:
                d = self.value(default, scope)
                f = replace(f, shift=max(f.shift, d.shift), digits=max(f.digits, d.digits))
            return replace(f, constant=False, literal=False, reference_key=False)
        if isinstance(function, (exp.FirstValue, exp.LastValue)):
            f = self.value(function.this, scope)
            return replace(f, constant=False, literal=False, reference_key=False)
        if isinstance(function, exp.NthValue):
            n = literal_int(function.args.get("offset"))
            if n is None or n < 1:
                raise _reject("literal_out_of_range", "nth_value needs a positive integer literal")
            f = self.value(function.this, scope)
            return replace(f, constant=False, literal=False, reference_key=False)
        if isinstance(function, (*_AGGREGATES, exp.Filter)):
            return self.expr(function, scope)
        return self.expr(function, scope)

    # maths
    def _rounding(self, node: exp.Expression, scope: Scope) -> Field:
        f = self.number(node.this, scope, type(node).__name__.lower())
        for key, value in node.args.items():
            if key == "this" or value in (None, False):
                continue
            if key != "decimals" or literal_int(value) is None or abs(literal_int(value) or 0) > 30:
                raise _reject(
                    "literal_out_of_range",
                    f"{_shown(node)}: the number of digits must be a literal from -30 to 30",
                )
        if f.type is not SqlType.NUMERIC and literal_number(node.this) is None:
            node.set("this", _cast(node.this, "DECIMAL"))
        return Field(SqlType.NUMERIC, constant=f.constant, digits=f.digits + 1)

    e_Round = _rounding
    e_Trunc = _rounding
    e_Floor = _rounding
    e_Ceil = _rounding
    e_Abs = _rounding
    e_Sign = _rounding

    # text
    def _text(self, node: exp.Expression, scope: Scope) -> Field:
        growth = 0.0
        for value in node.args.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, exp.Expression):
                    growth += self.value(item, scope).growth
        return self._grown(node, growth)

    def _grown(self, node: exp.Expression, growth: float) -> Field:
        """Text built from data: refused when it could become far longer than that data."""
        if growth > MAX_TEXT_GROWTH:
            raise _reject(
                "too_complex",
                f"{_shown(node)}: this text could become more than {MAX_TEXT_GROWTH} times as long as the "
                "data it is built from",
            )
        return Field(SqlType.TEXT, growth=growth)

    e_Lower = _text
    e_Upper = _text
    e_Initcap = _text
    e_Reverse = _text
    e_Concat = _text
    e_ConcatWs = _text

    def e_Length(self, node: exp.Length, scope: Scope) -> Field:
        self.value(node.this, scope)
        return Field(SqlType.INT, digits=10)

    def e_StartsWith(self, node: exp.Expression, scope: Scope) -> Field:
        self._text(node, scope)
        return Field(SqlType.BOOL)

    def e_StrPosition(self, node: exp.Expression, scope: Scope) -> Field:
        self.value(node.this, scope)
        self.value(node.args["substr"], scope)
        for key in ("position", "occurrence"):
            if node.args.get(key) is not None:
                raise _reject("unsupported_syntax", "position() takes two arguments")
        return Field(SqlType.INT, digits=10)

    def _literal_args(self, node: exp.Expression, scope: Scope, *keys: str) -> Field:
        growth = self.value(node.this, scope).growth
        for key, value in node.args.items():
            if key == "this" or value is None:
                continue
            if key in keys and literal_string(value) is None:
                raise _reject(
                    "unsupported_syntax", f"{_shown(node)}: arguments after the first must be string literals"
                )
            if isinstance(value, exp.Expression):
                self.value(value, scope)
        return Field(SqlType.TEXT, growth=growth)

    def e_Replace(self, node: exp.Expression, scope: Scope) -> Field:
        field = self._literal_args(node, scope, "expression", "replacement")
        old = literal_string(node.args.get("expression")) or ""
        new = literal_string(node.args.get("replacement")) or ""
        if len(new) > max(len(old), MAX_REPLACEMENT_LENGTH):
            raise _reject(
                "literal_out_of_range",
                f"replace() may not grow text by more than {MAX_REPLACEMENT_LENGTH} characters per match",
            )
        return self._grown(node, field.growth * max(1.0, len(new) / max(len(old), 1)))

    def e_Translate(self, node: exp.Expression, scope: Scope) -> Field:
        return self._literal_args(node, scope, "from_", "to", "from", "expression")

    def e_Trim(self, node: exp.Expression, scope: Scope) -> Field:
        return self._literal_args(node, scope, "expression")

    def e_Left(self, node: exp.Expression, scope: Scope) -> Field:
        growth = self.value(node.this, scope).growth
        self.number(node.expression, scope, "left/right")
        return Field(SqlType.TEXT, growth=growth)

    e_Right = e_Left

    def e_Substring(self, node: exp.Substring, scope: Scope) -> Field:
        growth = self.value(node.this, scope).growth
        start = node.args.get("start")
        if start is not None:
            self.number(start, scope, "substring")
        length = node.args.get("length")
        if length is not None and (literal_int(length) is None or (literal_int(length) or 0) < 0):
            raise _reject("literal_out_of_range", "substring's length must be a non-negative integer literal")
        return Field(SqlType.TEXT, growth=growth)

    def e_SplitPart(self, node: exp.Expression, scope: Scope) -> Field:
        growth = self.value(node.this, scope).growth
        self.value(node.args["delimiter"], scope)
        part = literal_int(node.args.get("part_index"))
        if part is None or part == 0:
            raise _reject(
                "literal_out_of_range", "split_part's field number must be a non-zero integer literal"
            )
        return Field(SqlType.TEXT, growth=growth)

    def e_Pad(self, node: exp.Pad, scope: Scope) -> Field:
        growth = self.value(node.this, scope).growth
        length = literal_int(node.expression)
        if length is None or not 0 <= length <= MAX_PAD_LENGTH:
            raise _reject(
                "literal_out_of_range", f"lpad/rpad need a literal length from 0 to {MAX_PAD_LENGTH}"
            )
        fill = node.args.get("fill_pattern")
        if fill is not None and literal_string(fill) is None:
            raise _reject("unsupported_syntax", "lpad/rpad fill must be a string literal")
        return Field(SqlType.TEXT, growth=growth)

    def e_RegexpReplace(self, node: exp.Expression, scope: Scope) -> Field:
        growth = self.value(node.this, scope).growth
        pattern = literal_string(node.expression)
        if pattern is None:
            raise _reject("invalid_pattern", "regular expressions must be string literals")
        check_regex(pattern)
        replacement = node.args.get("replacement")
        text = literal_string(replacement) if replacement is not None else None
        if text is None or len(text) > MAX_REPLACEMENT_LENGTH:
            raise _reject(
                "invalid_pattern",
                "regexp_replace needs a string literal replacement of at most "
                f"{MAX_REPLACEMENT_LENGTH} characters",
            )
        modifiers = node.args.get("modifiers")
        if modifiers is not None and (literal_string(modifiers) or "x") not in ("g", "i", "gi", "ig"):
            raise _reject("invalid_pattern", "regexp_replace flags may be 'g', 'i' or 'gi'")
        for key in ("position", "occurrence", "parameters"):
            if node.args.get(key) is not None:
                raise _reject(
                    "unsupported_syntax", "regexp_replace takes a value, a pattern, a replacement and flags"
                )
        # with 'g', an empty match between every two characters inserts the replacement there
        return self._grown(node, growth * (1 + len(text)))

    # dates
    def e_Extract(self, node: exp.Extract, scope: Scope) -> Field:
        field_name = (
            node.this.name.lower() if isinstance(node.this, (exp.Var, exp.Literal, exp.Identifier)) else ""
        )
        f = self.value(node.expression, scope)
        allowed = _DATE_FIELDS
        if f.type in (SqlType.TIMESTAMP, SqlType.INTERVAL):
            allowed = _DATE_FIELDS | _TIME_FIELDS
        if f.type not in (SqlType.DATE, SqlType.TIMESTAMP, SqlType.INTERVAL):
            raise _reject(
                "unsupported_operation", f"{_shown(node)}: EXTRACT takes a date, timestamp or interval"
            )
        if field_name not in allowed or (
            f.type is SqlType.INTERVAL and field_name in ("dow", "doy", "isodow", "isoyear", "week", "julian")
        ):
            raise _reject(
                "invalid_pattern", f"EXTRACT field {field_name!r} is not valid for a {f.type.value}"
            )
        return Field(SqlType.NUMERIC, constant=f.constant, digits=13)

    def _truncation(self, node: exp.Expression, scope: Scope) -> Field:
        unit = node.args.get("unit")
        name = unit.name.lower() if isinstance(unit, (exp.Var, exp.Literal, exp.Identifier)) else ""
        if name not in _TRUNC_UNITS:
            raise _reject(
                "invalid_pattern", f"date_trunc unit {name!r} is not one of {', '.join(sorted(_TRUNC_UNITS))}"
            )
        f = self.value(node.this, scope)
        if f.type not in (SqlType.DATE, SqlType.TIMESTAMP):
            raise _reject("unsupported_operation", f"{_shown(node)}: date_trunc takes a date or timestamp")
        for key, value in node.args.items():
            if key not in ("this", "unit") and value not in (None, False):
                raise _reject("unsupported_syntax", "date_trunc takes a unit and a value")
        return replace(f, type=SqlType.TIMESTAMP, literal=False)

    e_TimestampTrunc = _truncation
    e_DateTrunc = _truncation

    def e_TimeToStr(self, node: exp.Expression, scope: Scope) -> Field:
        f = self.value(node.this, scope)
        if f.type not in (SqlType.DATE, SqlType.TIMESTAMP) or literal_string(node.args.get("format")) is None:
            raise _reject(
                "error_prone_function",
                "to_char() is allowed on dates and timestamps with a literal format only",
            )
        for key, value in node.args.items():
            if key not in ("this", "format") and value not in (None, False):
                raise _reject("unsupported_syntax", "to_char takes a value and a format")
        return Field(SqlType.TEXT)

    def e_Anonymous(self, node: exp.Anonymous, scope: Scope) -> Field:
        name = pg_name(node.this) if isinstance(node.this, exp.Identifier) else str(node.this).lower()
        args = list(node.expressions)
        if name in _ERROR_PRONE_ANONYMOUS:
            raise _reject("error_prone_function", _ERROR_PRONE_ANONYMOUS[name])
        if self.trust_allowed(node):
            return self.trust_function(node, scope)
        if name == "age" and 1 <= len(args) <= 2:
            for arg in args:
                if self.value(arg, scope).type not in (SqlType.DATE, SqlType.TIMESTAMP, SqlType.UNKNOWN):
                    raise _reject("unsupported_operation", "age() takes dates or timestamps")
            return Field(SqlType.INTERVAL)
        if name == "octet_length" and len(args) == 1:
            self.value(args[0], scope)
            return Field(SqlType.INT, digits=10)
        if name == "isfinite" and len(args) == 1:
            self.value(args[0], scope)
            return Field(SqlType.BOOL)
        if name in ("num_nulls", "num_nonnulls") and args:
            for arg in args:
                self.plain_or_value(arg, scope)
            return Field(SqlType.INT, digits=4)
        if name == "every" and len(args) == 1:
            self._aggregate_seen(node, scope)
            self.value(args[0], scope)
            return Field(SqlType.BOOL)
        raise _reject("forbidden_function", f"function {name}() is not part of the cohort language")


def _combined(fields: list[Field], *, constant: bool) -> Field:
    """One of several values (CASE, COALESCE, GREATEST...): the largest of their bounds."""
    return Field(
        unify([f.type for f in fields]),
        constant=constant,
        shift=max((f.shift for f in fields), default=0.0),
        digits=max((f.digits for f in fields), default=0.0),
        growth=max((f.growth for f in fields), default=0.0),
    )


def _uncast(node: exp.Expression) -> exp.Expression:
    node = strip_parens(node)
    while isinstance(node, exp.Cast):
        node = strip_parens(node.this)
    return node


def _is_clamp(node: exp.Expression) -> bool:
    node = strip_parens(node)
    if _cast_target(node) is not exp.DataType.Type.INT:
        return False
    node = strip_parens(node.this)
    if not isinstance(node, exp.Least) or len(node.expressions) != 1:
        return False
    inner = strip_parens(node.this)
    return (
        literal_int(node.expressions[0]) == MAX_DAY_OFFSET
        and isinstance(inner, exp.Greatest)
        and len(inner.expressions) == 1
        and literal_int(inner.expressions[0]) == -MAX_DAY_OFFSET
    )


def _null_free_person_set(query: exp.Expression, column: str) -> None:
    """Wrap a person set so it never holds NULL: ``x NOT IN (set with a NULL)`` would be NULL for everyone."""
    select = query.this if isinstance(query, exp.Subquery) else query
    if _is_null_free_wrapper(select, column):
        return
    alias = "person_set"
    wrapper = sqlglot.parse_one(
        f'SELECT "{alias}"."{column}" FROM (SELECT 1) AS "{alias}" WHERE NOT "{alias}"."{column}" IS NULL',
        read="postgres",
    )
    from_ = wrapper.args["from_"]
    from_.set(
        "this",
        exp.Subquery(this=select.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))),
    )
    select.replace(wrapper)


def _is_null_free_wrapper(select: exp.Expression, column: str) -> bool:
    if not isinstance(select, exp.Select) or len(select.expressions) != 1:
        return False
    if any(select.args.get(k) for k in ("joins", "group", "having", "limit", "offset", "distinct", "with_")):
        return False
    from_ = select.args.get("from_")
    item = from_.this if isinstance(from_, exp.From) else None
    if not isinstance(item, exp.Subquery):
        return False
    alias = item.args.get("alias")
    name = pg_name(alias.this) if isinstance(alias, exp.TableAlias) else None
    projected = select.expressions[0]
    where = select.args.get("where")
    condition = strip_parens(where.this) if isinstance(where, exp.Where) else None
    expected = exp.Not(this=exp.Is(this=projected.copy(), expression=exp.Null()))
    return (
        isinstance(projected, exp.Column)
        and pg_name(projected.args.get("table")) == name
        and pg_name(projected.this) == column
        and condition is not None
        and condition == expected
    )


_OPERATORS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Mod": "%"}

_T = exp.DataType.Type
_TARGETS: dict[object, SqlType] = {
    _T.BIGINT: SqlType.INT,
    _T.INT: SqlType.INT,
    _T.SMALLINT: SqlType.INT,
    _T.DECIMAL: SqlType.NUMERIC,
    _T.DOUBLE: SqlType.FLOAT,
    _T.FLOAT: SqlType.FLOAT,
    _T.TEXT: SqlType.TEXT,
    _T.VARCHAR: SqlType.TEXT,
    _T.CHAR: SqlType.TEXT,
    _T.BPCHAR: SqlType.TEXT,
    _T.DATE: SqlType.DATE,
    _T.TIMESTAMP: SqlType.TIMESTAMP,
    _T.TIMESTAMPTZ: SqlType.TIMESTAMP,
    _T.INTERVAL: SqlType.INTERVAL,
    _T.BOOLEAN: SqlType.BOOL,
}
#: Casts that cannot fail, by target: the source types each accepts for data values.
_SAFE_CASTS: dict[SqlType, frozenset[SqlType]] = {
    SqlType.TEXT: frozenset(SqlType) - {SqlType.OTHER},
    SqlType.NUMERIC: frozenset({SqlType.INT, SqlType.NUMERIC, SqlType.FLOAT}),
    SqlType.INT: frozenset({SqlType.INT}),
    SqlType.DATE: frozenset({SqlType.DATE, SqlType.TIMESTAMP}),
    SqlType.TIMESTAMP: frozenset({SqlType.DATE, SqlType.TIMESTAMP}),
    SqlType.BOOL: frozenset({SqlType.BOOL}),
    SqlType.INTERVAL: frozenset({SqlType.INTERVAL}),
}
