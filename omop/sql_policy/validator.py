"""``validate``: researcher SQL in, a pinned and re-emitted query out, or a reasoned refusal.

Order of the checks (the first failure wins, so each hostile input has one predictable reason code):

1. text: size cap, NUL bytes, emptiness;
2. parse with sqlglot's PostgreSQL dialect; exactly one statement, nothing after its semicolon;
3. statement kinds anywhere in the tree: no writes/DDL, utility statements, SELECT INTO, locking;
4. the top level is SELECT / UNION / INTERSECT / EXCEPT (WITH allowed);
5. a scoped walk over every node: node and function allowlists, table pinning to the policy schema, system
   catalogs, casts, literal LIMIT/OFFSET/FETCH, bounded generate_series;
6. person_id lineage, then the cohort's output columns (person_id present, named, unique);
7. the person-local language (``person_local`` and ``expressions``): every output row is one person's,
   identifiers are opaque, evaluation cannot fail on any value; total forms are written into the tree;
8. re-emit the SQL from the pinned (and rewritten) tree (no comments), then validate that text again:
   it must come out unchanged, so the exact text PostgreSQL runs has itself passed every check.

Any exception other than ``QueryRejected`` raised on the way is turned into ``internal_error``: the
validator fails closed, never open, and never crashes its caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from omop.sql_policy.checks import ScopedChecker, reject_statement_kinds
from omop.sql_policy.columns import check_person_id_lineage, output_columns
from omop.sql_policy.errors import QueryRejected
from omop.sql_policy.person_local import LocalityAnalyser
from omop.sql_policy.policy import DEFAULT_POLICY, QueryPolicy

DIALECT = "postgres"

# sqlglot logs a WARNING quoting the input when it falls back to an unparsed Command; researcher SQL
# belongs in the trust's audit log, not in general-purpose logs that may be shipped elsewhere.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ValidatedQuery:
    """A query that passed the policy.

    ``sql`` is generated from ``ast`` (never the request text) and is what the trust executes.
    ``output_columns`` are the cohort's column names as PostgreSQL will report them; one is ``person_id``.
    ``ast`` is the pinned tree; treat it as read-only (use ``ast.copy()`` to build on it).
    """

    sql: str
    output_columns: tuple[str, ...]
    ast: exp.Expression


def validate(sql: str, policy: QueryPolicy = DEFAULT_POLICY) -> ValidatedQuery:
    """Validate researcher SQL against ``policy``; raise ``QueryRejected`` with a reason code if it fails."""
    try:
        return _validate(sql, policy)
    except QueryRejected:
        raise
    except RecursionError:
        raise QueryRejected("parse_error", "the query is nested too deeply") from None
    except Exception as exc:
        raise QueryRejected(
            "internal_error",
            f"the validator could not check this query ({type(exc).__name__}); it is refused",
        ) from None


def _validate(sql: str, policy: QueryPolicy) -> ValidatedQuery:
    if not isinstance(sql, str):
        raise QueryRejected("parse_error", "the query must be text")
    size = len(sql.encode("utf-8", errors="surrogatepass"))
    if size > policy.max_bytes:
        raise QueryRejected("too_large", f"the query is {size} bytes; the limit is {policy.max_bytes} bytes")
    if "\x00" in sql:
        raise QueryRejected("nul_byte", "the query contains a NUL byte")
    if _has_lone_surrogate(sql):
        raise QueryRejected("parse_error", "the query is not valid Unicode text")
    if not sql.strip():
        raise QueryRejected("empty", "the query is empty")

    first = _check_tree(_parse_single(sql), policy)
    # Layer 3: what PostgreSQL will run is the emitted text, so that text must itself pass, unchanged.
    second = _check_tree(_parse_single(first.sql), policy)
    if second.sql != first.sql or second.output_columns != first.output_columns:
        raise QueryRejected(
            "internal_error", "the re-emitted query does not validate to itself; it is refused (fail closed)"
        )
    return second


def _check_tree(tree: exp.Expr, policy: QueryPolicy) -> ValidatedQuery:
    reject_statement_kinds(tree)
    root = _query_root(tree)
    ScopedChecker(policy).visit(root, frozenset())
    check_person_id_lineage(root)
    columns = output_columns(root)
    _canonicalise(root)
    LocalityAnalyser(policy).check_cohort(root)
    return ValidatedQuery(sql=root.sql(dialect=DIALECT, comments=False), output_columns=columns, ast=root)


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parse_single(sql: str) -> exp.Expr:
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql)
    except TokenError:
        raise QueryRejected(
            "parse_error", "the query text cannot be tokenised (unterminated string, quote or comment?)"
        ) from None
    semicolons = [t for t in tokens if t.token_type == TokenType.SEMICOLON]
    if semicolons:
        last = semicolons[-1]
        if len(semicolons) > 1 or last is not tokens[-1] or sql[last.end + 1 :].strip():
            raise QueryRejected(
                "multiple_statements",
                "exactly one statement is allowed, and nothing (not even a comment) may follow its semicolon",
            )
    if not tokens or (len(tokens) == 1 and semicolons):
        raise QueryRejected("empty", "the query contains no statement")
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except (ParseError, TokenError) as exc:
        raise QueryRejected("parse_error", _parse_message(exc)) from None
    present = [s for s in statements if s is not None]
    if len(present) != 1 or len(statements) != 1:
        raise QueryRejected("multiple_statements", "exactly one statement is allowed")
    return present[0]


def _parse_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        desc = str(first.get("description") or "syntax error")
        line, col = first.get("line"), first.get("col")
        if line is not None and col is not None:
            return f"{desc} at line {line}, column {col}"
        return desc
    return "the query cannot be parsed as PostgreSQL"


def _query_root(tree: exp.Expr) -> exp.Expression:
    root = tree
    while isinstance(root, exp.Subquery) and all(
        value in (None, False, []) for key, value in root.args.items() if key != "this"
    ):
        root = root.this
    if type(root) in (exp.Select, exp.Union, exp.Intersect, exp.Except) and isinstance(root, exp.Expression):
        return root
    raise QueryRejected(
        "not_select", f"only SELECT queries are allowed, not {type(tree).__name__.upper()} statements"
    )


def _canonicalise(root: exp.Expression) -> None:
    """Drop comments and turn dollar-quoted strings into ordinary literals, as the emitted text will have."""
    for node in list(root.walk()):
        node.comments = None
        if type(node) is exp.RawString:
            node.replace(exp.Literal.string(str(node.this)))
