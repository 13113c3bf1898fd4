"""The tree checks: statement kinds anywhere, then a scoped walk that pins tables and vets every node.

The scoped walk carries the set of CTE names visible at each point, following PostgreSQL's rules: a CTE
is visible in the body of its WITH and in the CTEs after it; with RECURSIVE every CTE of the list is
visible in every other (and in itself). A table reference is a CTE reference only if it is unqualified and
its name is visible there; every other table reference is a relation, which must be in the policy's
schema and is rewritten to carry that schema explicitly ("pinned"), so the search path never decides.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from omop.sql_policy.allowlist import (
    ANONYMOUS_FUNCTIONS,
    CAST_TYPES,
    DATA_MODIFYING,
    FUNCTIONS,
    SERIES_FUNCTIONS,
    STRUCTURE,
    UTILITY,
)
from omop.sql_policy.errors import QueryRejected
from omop.sql_policy.expressions import literal_int
from omop.sql_policy.names import is_system_relation, is_system_schema, pg_name
from omop.sql_policy.policy import QueryPolicy

#: SQL keywords PostgreSQL evaluates as functions without parentheses (server/session identity).
KEYWORD_FUNCTIONS = frozenset(
    {
        "user",
        "current_user",
        "current_role",
        "session_user",
        "system_user",
        "current_catalog",
        "current_schema",
    }
)


def reject_statement_kinds(root: exp.Expr) -> None:
    """Refuse anything that writes, locks or is not a query, wherever it sits in the tree."""
    for node in root.walk():
        kind = type(node)
        if kind in DATA_MODIFYING:
            raise QueryRejected(
                "data_modifying",
                f"the query contains a {kind.__name__.upper()} statement; only read-only SELECT queries "
                "are allowed (writable CTEs included)",
            )
        if kind in UTILITY:
            raise QueryRejected(
                "not_select",
                "only SELECT queries are allowed (no COPY, EXPLAIN, SET, DO, CALL, VACUUM or other "
                "utility statements)",
            )
        if isinstance(node, exp.Into):
            raise QueryRejected("select_into", "SELECT ... INTO creates a table and is not allowed")
        if isinstance(node, exp.Lock):
            raise QueryRejected(
                "locking_clause", "locking clauses (FOR UPDATE/SHARE/NO KEY UPDATE/KEY SHARE) are not allowed"
            )


def _children(node: exp.Expression, skip: str | None = None) -> Iterator[exp.Expression]:
    for key, value in node.args.items():
        if key == skip:
            continue
        values = value if isinstance(value, list) else [value]
        for child in values:
            if isinstance(child, exp.Expression):
                yield child


class ScopedChecker:
    """Walks the tree once, checking every node and pinning relations to the policy schema."""

    def __init__(self, policy: QueryPolicy) -> None:
        self.policy = policy
        self.schema = policy.schema

    # -- the walk ------------------------------------------------------------------------------------------
    def visit(self, node: exp.Expression, scope: frozenset[str]) -> None:
        self.check_node(node, scope)
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            if isinstance(node.parent, exp.SetOperation):
                # PostgreSQL only accepts it parenthesised; sqlglot's tree for it does not round-trip.
                raise QueryRejected(
                    "unsupported_syntax",
                    "a WITH inside a UNION/INTERSECT/EXCEPT branch must be in parentheses",
                )
            inner = self.visit_with(with_, scope)
            for child in _children(node, skip="with_"):
                self.visit(child, inner)
            return
        for child in _children(node):
            self.visit(child, scope)

    def visit_with(self, with_: exp.With, scope: frozenset[str]) -> frozenset[str]:
        self.check_node(with_, scope)
        ctes = [cte for cte in with_.expressions if isinstance(cte, exp.CTE)]
        if len(ctes) != len(with_.expressions):
            raise QueryRejected("unsupported_syntax", "unexpected item in a WITH clause")
        names: list[str] = []
        for cte in ctes:
            alias = cte.args.get("alias")
            name = pg_name(alias.this) if isinstance(alias, exp.TableAlias) else None
            if not name:
                raise QueryRejected("unsupported_syntax", "every WITH query needs a name")
            if is_system_relation(name):
                raise QueryRejected(
                    "system_catalog", f"WITH query name {name!r}: names starting with pg_ are reserved"
                )
            names.append(name)
        recursive = bool(with_.args.get("recursive"))
        everything = scope | frozenset(names)
        for index, cte in enumerate(ctes):
            visible = everything if recursive else scope | frozenset(names[:index])
            self.visit(cte, visible)
        for key, value in with_.args.items():
            if key not in ("expressions", "recursive") and value not in (None, False):
                raise QueryRejected("unsupported_syntax", f"WITH ... {key.upper()} is not supported")
        return everything

    # -- one node ------------------------------------------------------------------------------------------
    def check_node(self, node: exp.Expression, scope: frozenset[str]) -> None:
        kind = type(node)
        if kind is exp.Table and isinstance(node, exp.Table):
            self.check_table(node, scope)
        elif kind is exp.Column and isinstance(node, exp.Column):
            self.check_column(node)
        elif kind is exp.Anonymous and isinstance(node, exp.Anonymous):
            self.check_anonymous(node)
        elif kind is exp.Dot:
            if isinstance(node.expression, exp.Func):
                raise QueryRejected(
                    "forbidden_function",
                    f"schema-qualified function calls are not allowed ({node.sql(dialect='postgres')[:80]})",
                )
            raise QueryRejected(
                "unsupported_syntax", "field access with '.' on an expression is not supported"
            )
        elif kind in (exp.Limit, exp.Offset):
            self.check_limit(node)
        elif kind is exp.Fetch:
            self.check_fetch(node)
        elif kind is exp.DataType and isinstance(node, exp.DataType):
            self.check_type(node)
        elif kind is exp.If and not isinstance(node.parent, exp.Case):
            raise QueryRejected("forbidden_function", "IF()/IIF() is not PostgreSQL; use CASE WHEN")
        elif kind.__name__ == "ObjectIdentifier":
            raise QueryRejected(
                "forbidden_type",
                f"casts to {node.sql(dialect='postgres')[:40]} resolve catalog names and are not allowed",
            )
        elif kind in SERIES_FUNCTIONS:
            self.check_series(node)
        elif kind in STRUCTURE or kind in FUNCTIONS:
            pass
        elif isinstance(node, exp.Func):
            self.check_typed_function(node)
        else:
            raise QueryRejected("unsupported_syntax", f"{_describe(node)} is not supported in cohort queries")

    def check_table(self, table: exp.Table, scope: frozenset[str]) -> None:
        this = table.this
        catalog = table.args.get("catalog")
        db = table.args.get("db")
        if isinstance(this, exp.Identifier):
            name = pg_name(this) or ""
            schema = pg_name(db) if db is not None else None
            if schema is not None and is_system_schema(schema):
                raise QueryRejected("system_catalog", f"system schema {schema!r} is not accessible")
            if is_system_relation(name):
                raise QueryRejected("system_catalog", f"system catalog {name!r} is not accessible")
            if catalog is not None:
                raise QueryRejected(
                    "forbidden_schema", "database (catalog) qualifiers are not allowed; use omop.<table>"
                )
            if db is not None and schema != self.schema:
                raise QueryRejected(
                    "forbidden_schema",
                    f"table {table.sql(dialect='postgres')[:80]} is outside schema {self.schema!r}",
                )
            if not name:
                raise QueryRejected("parse_error", "empty table name")
            if name == "person_id":
                raise QueryRejected("person_id_lineage", "a table may not be named person_id")
            if db is None and name in scope:
                return  # a CTE reference, left as written
            table.set("db", exp.to_identifier(self.schema))
            return
        if isinstance(this, exp.Func):
            if db is not None or catalog is not None:
                raise QueryRejected("forbidden_function", "schema-qualified table functions are not allowed")
            return
        if this is None and table.args.get("rows_from") and db is None and catalog is None:
            return
        raise QueryRejected("unsupported_syntax", "unsupported item in FROM")

    def check_column(self, column: exp.Column) -> None:
        ident = column.this
        if (
            isinstance(ident, exp.Identifier)
            and not ident.quoted
            and column.args.get("table") is None
            and pg_name(ident) in KEYWORD_FUNCTIONS
        ):
            # sqlglot reads a bare ``user`` as a column; PostgreSQL reads it as a call to current_user.
            raise QueryRejected(
                "forbidden_function", f"{pg_name(ident)} is a function in PostgreSQL and is not allowed"
            )
        if column.args.get("catalog") is not None:
            raise QueryRejected("forbidden_schema", "database (catalog) qualifiers are not allowed")
        db = column.args.get("db")
        if db is not None:
            schema = pg_name(db) or ""
            if is_system_schema(schema):
                raise QueryRejected("system_catalog", f"system schema {schema!r} is not accessible")
            if schema != self.schema:
                raise QueryRejected(
                    "forbidden_schema", f"column qualifier {schema!r} is not schema {self.schema!r}"
                )

    def check_anonymous(self, node: exp.Anonymous) -> None:
        this = node.this
        if isinstance(this, exp.Identifier) and this.quoted:
            raise QueryRejected("forbidden_function", "quoted function names are not allowed")
        name = pg_name(this if isinstance(this, exp.Identifier) else str(this)) or ""
        if name in ANONYMOUS_FUNCTIONS or name in self.policy.extra_allowed_functions:
            return
        raise QueryRejected("forbidden_function", f"function {name}() is not on the allowlist")

    def check_typed_function(self, node: exp.Func) -> None:
        names = [fold_name.lower() for fold_name in type(node).sql_names()]
        if any(name in self.policy.extra_allowed_functions for name in names):
            return
        shown = names[0] if names else type(node).__name__.lower()
        raise QueryRejected("forbidden_function", f"function {shown}() is not on the allowlist")

    def check_limit(self, node: exp.Expression) -> None:
        extra = [key for key, value in node.args.items() if key != "expression" and value not in (None, [])]
        value = literal_int(node.args.get("expression"))
        if extra or value is None or value < 0:
            raise QueryRejected(
                "non_literal_limit",
                f"{type(node).__name__.upper()} must be a non-negative integer literal",
            )

    def check_fetch(self, node: exp.Expression) -> None:
        count = node.args.get("count")
        if count is None:
            return
        value = literal_int(count)
        options = node.args.get("limit_options")
        if (
            value is None
            or value < 0
            or (isinstance(options, exp.Expression) and options.args.get("percent"))
        ):
            raise QueryRejected(
                "non_literal_limit", "FETCH FIRST n ROWS needs a non-negative integer literal"
            )

    def check_type(self, node: exp.DataType) -> None:
        if node.this not in CAST_TYPES:
            raise QueryRejected(
                "forbidden_type", f"type {node.sql(dialect='postgres')[:40]} is not allowed in cohort queries"
            )

    def check_series(self, node: exp.Expression) -> None:
        raise QueryRejected(
            "generated_rows",
            "generate_series makes rows out of nothing and is not allowed; join person and vocabulary tables",
        )


def _describe(node: exp.Expression) -> str:
    try:
        text = node.sql(dialect="postgres")
    except Exception:
        text = ""
    text = " ".join(text.split())
    if text and len(text) <= 60:
        return f"{text!r} ({type(node).__name__})"
    return type(node).__name__
