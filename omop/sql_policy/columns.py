"""The cohort's output columns, and the rules that keep ``person_id`` meaning "a person".

Disclosure control counts distinct ``person_id`` values, so the column has to hold person ids. The
validator cannot see data, but it can make sure nothing else is *named* person_id: anywhere in the query,
a column may only be called ``person_id`` if it is a ``person_id`` column of a source (optionally cast),
no table, CTE or column alias list may introduce the name, and in UNION/INTERSECT/EXCEPT every branch must
put a person_id column where the first branch has one. A deterministic function of person_id (a cast) can
only merge persons, never create more, so counting it stays on the safe side of the threshold.
"""

from __future__ import annotations

from sqlglot import exp

from omop.sql_policy.errors import QueryRejected
from omop.sql_policy.names import pg_name

PERSON_ID = "person_id"

_NEED_PERSON_ID = (
    "the cohort must select a person_id column (for example SELECT p.person_id, ... FROM omop.person p): "
    "disclosure control counts distinct persons"
)


def projection_name(node: exp.Expression) -> str | None:
    """The output name PostgreSQL gives a select-list item, when it is a name we can state with certainty.

    An alias names the item; a column (optionally cast or parenthesised) keeps its name. For anything else
    PostgreSQL invents a name (``count``, ``?column?``) that the validator does not try to predict.
    """
    if isinstance(node, exp.Alias):
        return pg_name(node.args.get("alias"))
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return pg_name(node.this)
    return None


def carries_person_id(node: exp.Expression) -> bool:
    """True if ``node`` is a person_id column of some source (aliased, cast or parenthesised at most)."""
    if isinstance(node, exp.Alias):
        node = node.this
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return isinstance(node, exp.Column) and pg_name(node.this) == PERSON_ID


def is_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star))


def leaves(query: exp.Expression) -> list[exp.Expression]:
    """The SELECT/VALUES branches of a (possibly nested, parenthesised) set operation, left to right."""
    if isinstance(query, exp.SetOperation):
        return leaves(query.this) + leaves(query.expression)
    if isinstance(query, exp.Subquery) and query.args.get("alias") is None:
        return leaves(query.this)
    return [query]


def check_person_id_lineage(root: exp.Expression) -> None:
    """Refuse every way of giving the name person_id to something that is not a person id."""
    for node in root.walk():
        if isinstance(node, exp.Alias) and pg_name(node.args.get("alias")) == PERSON_ID:
            if not carries_person_id(node.this):
                raise QueryRejected(
                    "person_id_lineage",
                    "only a person_id column may be named person_id (an expression or another column "
                    "renamed to person_id would make disclosure control count the wrong thing)",
                )
        elif isinstance(node, exp.TableAlias):
            _check_table_alias(node)
        elif isinstance(node, exp.SetOperation):
            _check_set_operation(node)


def _check_table_alias(alias: exp.TableAlias) -> None:
    """A table alias may not be called person_id; a column list may name person_id only over person ids.

    ``WITH c(person_id, d) AS (SELECT p.person_id, ...)`` renames by position, so every branch of the
    query behind the list must have a person_id column at that position. Column lists over anything else
    (VALUES, functions, tables) may not introduce the name.
    """
    if pg_name(alias.this) == PERSON_ID:
        raise QueryRejected("person_id_lineage", "a table, WITH query or alias may not be named person_id")
    columns = [pg_name(c) for c in alias.args.get("columns") or []]
    positions = [i for i, name in enumerate(columns) if name == PERSON_ID]
    if not positions:
        return
    owner = alias.parent
    query = owner.this if isinstance(owner, (exp.CTE, exp.Subquery)) else None
    problem = "a column alias list may name person_id only over a person_id column of a listed SELECT"
    if not isinstance(query, exp.Expression):
        raise QueryRejected("person_id_lineage", problem)
    for branch in leaves(query):
        if not isinstance(branch, exp.Select) or any(is_star(p) for p in branch.expressions):
            raise QueryRejected("person_id_lineage", problem)
        for index in positions:
            if index >= len(branch.expressions) or not carries_person_id(branch.expressions[index]):
                raise QueryRejected("person_id_lineage", problem)


def _check_set_operation(node: exp.SetOperation) -> None:
    branches = leaves(node)
    for branch in branches:
        if isinstance(branch, exp.Select) and any(is_star(p) for p in branch.expressions):
            raise QueryRejected(
                "person_id_lineage",
                "list the columns explicitly in every branch of UNION/INTERSECT/EXCEPT (no SELECT *), "
                "so that person_id lines up",
            )
    first = branches[0]
    if not isinstance(first, exp.Select):
        positions: list[int] = []
    else:
        positions = [i for i, p in enumerate(first.expressions) if projection_name(p) == PERSON_ID]
    if not positions:
        return
    for branch in branches[1:]:
        if not isinstance(branch, exp.Select):
            raise QueryRejected(
                "person_id_lineage", "every branch of a set operation with person_id must be a SELECT"
            )
        for index in positions:
            items = branch.expressions
            if index >= len(items) or not carries_person_id(items[index]):
                raise QueryRejected(
                    "person_id_lineage",
                    f"column {index + 1} is person_id in the first branch of UNION/INTERSECT/EXCEPT, "
                    "so it must be a person_id column in every branch",
                )


def _cte_map(query: exp.Expression) -> dict[str, exp.CTE]:
    with_ = query.args.get("with_")
    found: dict[str, exp.CTE] = {}
    if isinstance(with_, exp.With):
        for cte in with_.expressions:
            alias = cte.args.get("alias")
            name = pg_name(alias.this) if isinstance(alias, exp.TableAlias) else None
            if name:
                found[name] = cte
    return found


def _source_columns(
    source: exp.Expression, ctes: dict[str, exp.CTE], seen: frozenset[str]
) -> list[str | None] | None:
    """Output names of a FROM item when they are knowable without the database schema, else None."""
    alias = source.args.get("alias")
    renamed = (
        [pg_name(c) for c in alias.args.get("columns") or []] if isinstance(alias, exp.TableAlias) else []
    )
    inner: list[str | None] | None = None
    if isinstance(source, exp.Subquery):
        inner = query_columns(source.this, ctes, seen)
    elif (
        isinstance(source, exp.Table)
        and isinstance(source.this, exp.Identifier)
        and source.args.get("db") is None
    ):
        name = pg_name(source.this) or ""
        cte = ctes.get(name)
        if cte is not None and name not in seen:
            cte_alias = cte.args.get("alias")
            cte_renamed = (
                [pg_name(c) for c in cte_alias.args.get("columns") or []]
                if isinstance(cte_alias, exp.TableAlias)
                else []
            )
            inner = query_columns(cte.this, ctes, seen | {name})
            if inner is not None and cte_renamed:
                inner = cte_renamed + inner[len(cte_renamed) :]
    if inner is None:
        return None
    return renamed + inner[len(renamed) :] if renamed else inner


def query_columns(
    query: exp.Expression, ctes: dict[str, exp.CTE], seen: frozenset[str] = frozenset()
) -> list[str | None] | None:
    """Output names of a query (None entries: unnamed expressions), or None if a star hides them."""
    ctes = {**ctes, **_cte_map(query)}
    first = leaves(query)[0]
    if not isinstance(first, exp.Select):
        return None
    ctes = {**ctes, **_cte_map(first)}
    names: list[str | None] = []
    for item in first.expressions:
        if not is_star(item):
            names.append(projection_name(item))
            continue
        from_ = first.args.get("from_")
        if first.args.get("joins") or not isinstance(from_, exp.From):
            return None
        source = from_.this
        qualifier = pg_name(item.args.get("table")) if isinstance(item, exp.Column) else None
        if qualifier is not None and qualifier not in _source_names(source):
            return None
        expanded = _source_columns(source, ctes, seen)
        if expanded is None:
            return None
        names.extend(expanded)
    return names


def _source_names(source: exp.Expression) -> set[str]:
    alias = source.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.this is not None:
        return {pg_name(alias.this) or ""}
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        return {pg_name(source.this) or ""}
    return set()


def output_columns(root: exp.Expression) -> tuple[str, ...]:
    """The cohort's column names; refuses a cohort without a person_id, unnamed or duplicate columns."""
    names = query_columns(root, {})
    if names is None:
        raise QueryRejected(
            "no_person_id",
            "SELECT * is accepted only from a WITH query or subquery whose columns are listed; "
            + _NEED_PERSON_ID,
        )
    if PERSON_ID not in names:
        raise QueryRejected("no_person_id", _NEED_PERSON_ID)
    for position, name in enumerate(names, start=1):
        if name is None:
            raise QueryRejected(
                "unnamed_column", f"cohort column {position} is an expression without a name: add AS <name>"
            )
    seen: set[str] = set()
    for name in names:
        if name is not None and name in seen:
            raise QueryRejected(
                "duplicate_column",
                f"the cohort has two columns named {name!r}: give each column a distinct name with AS",
            )
        if name is not None:
            seen.add(name)
    return tuple(n for n in names if n is not None)
