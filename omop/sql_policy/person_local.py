"""The person-local cohort language: proof, on the syntax tree, that each output row is one person's.

A researcher's query decides what the trust counts, so the threshold alone protects nobody: a query whose
rows for person A depend on person B's data turns a count, a mean or a null pattern into B's value. This
module accepts a query only when it can show, from the tree and the CDM catalog, that

* every scope over person data is about **one person at a time**: person tables meet only on the person
  key (``person_id``) or on an event key (``visit_occurrence_id``...; the person equality is then added
  to the join, so a broken foreign key in an ETL cannot mix two persons), lookup tables only through
  their key from a person's row, and reference data (the vocabulary) freely;
* anything that looks across rows — aggregates, windows, ``DISTINCT ON``, ``LIMIT`` — is grouped,
  partitioned or correlated by that person's key;
* a subquery over person data is either correlated on the person key or used as a set of persons
  (``person_id IN (SELECT person_id ...)``; the set is filtered to non-null ids, so that ``NOT IN`` cannot
  turn one person's NULL into everybody's answer);
* identifiers are opaque (see :mod:`omop.sql_policy.expressions`), nothing generates rows
  (``generate_series``, ``unnest``, ``VALUES``) and nothing recurses.

Expressions are typed and checked for totality by :class:`~omop.sql_policy.expressions.ExpressionChecker`,
which calls back here for subqueries. Some rules are enforced by rewriting the tree (division by zero
gives NULL, arithmetic in ``numeric``, person equalities on event-key joins); every rewrite is idempotent,
so the re-emitted text validates to itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from sqlglot import exp

from omop.sql_policy.catalog import (
    LOOKUP_TABLES,
    PERSON_KEY,
    CatalogTable,
    SqlType,
    TableKind,
    catalog,
    known_table_names,
)
from omop.sql_policy.errors import QueryRejected
from omop.sql_policy.names import pg_name
from omop.sql_policy.policy import QueryPolicy


class Role(enum.Enum):
    VALUE = "value"
    PERSON_KEY = "person_key"  # the person id of the rows of this scope
    OUTER_KEY = "outer_key"  # the person id of an enclosing query's row (a correlation)
    IDENTIFIER = "identifier"  # any other opaque record or person identifier


@dataclass(frozen=True)
class Field:
    """What the analysis knows about a column or an expression."""

    type: SqlType
    role: Role = Role.VALUE
    event: str | None = None  # for identifiers: the person table whose rows it identifies
    constant: bool = False  # no column reference and no subquery: the same for every row
    nullable: bool = False  # a person key that may be NULL (from the outer side of a LEFT JOIN)
    shift: float = 0.0  # dates: years date arithmetic may have moved it; literal intervals: their size
    digits: float = 0.0  # numbers: a bound on the decimal digits of the integer part
    growth: float = 0.0  # text: a bound on its length as a multiple of the data it was built from
    reference_key: bool = False  # a vocabulary key column (concept_id...), passed through unchanged
    literal: bool = False  # a literal (or a cast of one): converted when the query is parsed

    @property
    def opaque(self) -> bool:
        return self.role is not Role.VALUE


VALUE_OF = {t: Field(t) for t in SqlType}


class SourceKind(enum.Enum):
    PERSON = "person"  # rows of many persons, each row one person's, keyed by a person-key column
    REFERENCE = "reference"  # public data, or values of the current row only
    LOOKUP = "lookup"  # care_site/location/provider: one row per person row, through its key
    BOUND = "bound"  # a LATERAL subquery over person data correlated on the owner's key


@dataclass
class Source:
    alias: str
    kind: SourceKind
    columns: dict[str, Field]
    lookup_key: str | None = None
    anchored: bool = False
    nullable: bool = False  # the right side of a LEFT JOIN: its columns may all be NULL
    lateral: bool = False  # a LATERAL subquery: its link to the other FROM items is inside it
    primary_key: tuple[str, ...] = ()  # a catalog table's primary key (unique by the database's rule)

    @property
    def person_keys(self) -> list[str]:
        return [name for name, f in self.columns.items() if f.role is Role.PERSON_KEY]


@dataclass
class Relation:
    """The output of a query: ordered columns, and whether its rows carry person data."""

    columns: list[tuple[str | None, Field]]
    person: bool  # unbound person rows: each row is one person's, and a PERSON_KEY column says whose
    bound: bool = False  # only the rows of one outer person (a correlated subquery)
    person_data: bool = False  # reads person data at all
    single_row: bool = False  # provably at most one row


@dataclass
class Scope:
    """One SELECT's FROM clause as the analysis sees it."""

    select: exp.Select
    parent: Scope | None
    ctes: dict[str, Relation]
    sources: dict[str, Source] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # union-find over person sources
    bound: bool = False
    bound_classes: set[str] = field(default_factory=set)
    reads_person_data: bool = False  # through a subquery in an expression
    aggregates: list[exp.Expression] = field(default_factory=list)
    windows: list[exp.Window] = field(default_factory=list)

    # -- the union-find over person sources ----------------------------------------------------------------
    def find(self, alias: str) -> str:
        while self.classes[alias] != alias:
            self.classes[alias] = self.classes[self.classes[alias]]
            alias = self.classes[alias]
        return alias

    def union(self, a: str, b: str) -> None:
        self.classes[self.find(a)] = self.find(b)

    def person_sources(self) -> list[Source]:
        return [s for s in self.sources.values() if s.kind is SourceKind.PERSON]

    def has_person_data(self) -> bool:
        return any(s.kind in (SourceKind.PERSON, SourceKind.BOUND) for s in self.sources.values())

    @property
    def free(self) -> bool:
        """Rows of several persons meet in this scope (so cross-row operations need the person key)."""
        return self.has_person_data() and not self.bound


def conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    """The top-level AND terms of a condition (parentheses around a term are looked through)."""
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


@dataclass(frozen=True)
class ColumnRef:
    """Where a column reference resolved: the scope, the source alias (None: an output alias), the field."""

    scope: Scope
    alias: str | None
    field: Field
    name: str = ""


class LocalityAnalyser:
    """Walks a validated, schema-pinned tree and proves it person-local (or raises ``QueryRejected``)."""

    def __init__(self, policy: QueryPolicy) -> None:
        from omop.sql_policy.expressions import ExpressionChecker

        self.schema = policy.schema
        self.extra_functions = policy.extra_allowed_functions
        self.catalog = catalog()
        self.expressions = ExpressionChecker(self)

    # -- entry point ---------------------------------------------------------------------------------------
    def check_cohort(self, root: exp.Expression) -> Relation:
        relation = self.query(root, parent=None, ctes={})
        if not relation.person:
            raise QueryRejected(
                "cross_person_output",
                "the cohort must be rows of persons: select person_id from a person table "
                "(person, condition_occurrence, ...), one row per person or per record",
            )
        for name, f in relation.columns:
            if name == PERSON_KEY and f.role is not Role.PERSON_KEY:
                raise QueryRejected(
                    "person_id_lineage", "the cohort's person_id column must be the person key of its rows"
                )
        self.expressions.check_budget()
        return relation

    # -- queries -------------------------------------------------------------------------------------------
    def query(self, node: exp.Expression, parent: Scope | None, ctes: dict[str, Relation]) -> Relation:
        node = strip_parens(node)
        if isinstance(node, exp.Subquery):
            if node.args.get("alias") is not None:
                raise QueryRejected("unsupported_syntax", "an aliased parenthesised query is not a query")
            return self.query(node.this, parent, ctes)
        ctes = self.with_clause(node, ctes)
        if isinstance(node, exp.SetOperation):
            return self.set_operation(node, parent, ctes)
        if isinstance(node, exp.Select):
            return self.select(node, parent, ctes)
        if isinstance(node, exp.Values):
            raise QueryRejected(
                "generated_rows", "VALUES lists make rows out of nothing; use CASE or IN (...) instead"
            )
        raise QueryRejected("unsupported_syntax", f"{type(node).__name__} is not a query")

    def with_clause(self, node: exp.Expression, ctes: dict[str, Relation]) -> dict[str, Relation]:
        with_ = node.args.get("with_")
        if not isinstance(with_, exp.With):
            return ctes
        if with_.args.get("recursive"):
            raise QueryRejected(
                "recursive_query",
                "WITH RECURSIVE is not allowed (its cost is unbounded); use concept_ancestor for hierarchies",
            )
        visible = dict(ctes)
        for cte in with_.expressions:
            alias = cte.args.get("alias")
            name = pg_name(alias.this) if isinstance(alias, exp.TableAlias) else None
            if not name:
                raise QueryRejected("unsupported_syntax", "every WITH query needs a name")
            relation = self.query(cte.this, None, visible)
            visible[name] = _renamed(relation, alias)
        return visible

    def set_operation(
        self, node: exp.SetOperation, parent: Scope | None, ctes: dict[str, Relation]
    ) -> Relation:
        left = self.query(node.this, parent, ctes)
        right = self.query(node.expression, parent, ctes)
        if len(left.columns) != len(right.columns):
            raise QueryRejected(
                "unsupported_syntax",
                "each branch of UNION/INTERSECT/EXCEPT must have the same number of columns",
            )
        if left.person != right.person or left.bound != right.bound:
            raise QueryRejected(
                "cross_person_output",
                "every branch of UNION/INTERSECT/EXCEPT must be rows of persons (with person_id), or none",
            )
        columns: list[tuple[str | None, Field]] = []
        for (name, lf), (_, rf) in zip(left.columns, right.columns, strict=True):
            merged = _merged(lf, rf)
            if lf.role is Role.PERSON_KEY and rf.role is Role.PERSON_KEY:
                if left.person and (lf.nullable or rf.nullable):
                    raise QueryRejected(
                        "cross_person_output",
                        "UNION/INTERSECT/EXCEPT compare whole rows, and NULL person ids of different "
                        "persons compare equal: take person_id from the table you join from, not from "
                        "the outer side of a LEFT JOIN",
                    )
                columns.append((name, replace(merged, role=Role.PERSON_KEY)))
            elif lf.opaque or rf.opaque:
                if lf.role is Role.PERSON_KEY or rf.role is Role.PERSON_KEY:
                    raise QueryRejected(
                        "person_id_lineage",
                        "person_id must stand in the same column of every branch of UNION/INTERSECT/EXCEPT",
                    )
                if not (lf.opaque and rf.opaque):
                    raise QueryRejected(
                        "opaque_identifier",
                        f"column {name or '?'} is an identifier in one branch of UNION/INTERSECT/EXCEPT "
                        "and not in another: identifiers are compared only with identifiers",
                    )
                columns.append((name, replace(merged, role=Role.IDENTIFIER)))
            else:
                columns.append((name, merged))
        self.row_choice(node, free=left.person and not left.bound)
        limit = node.args.get("limit")
        return Relation(
            columns,
            person=left.person,
            bound=left.bound,
            person_data=left.person_data or right.person_data,
            single_row=limit is not None and self.expressions.literal_count(limit) <= 1,
        )

    def row_choice(self, node: exp.Expression, *, free: bool) -> None:
        """LIMIT/OFFSET/FETCH pick rows; over several persons' rows that choice is cross-person."""
        for key in ("limit", "offset"):
            clause = node.args.get(key)
            if clause is None:
                continue
            if free:
                raise QueryRejected(
                    "cross_person_row_choice",
                    f"{key.upper()} picks rows across persons; to pick one row per person use "
                    "row_number() OVER (PARTITION BY person_id ORDER BY ...) = 1 or DISTINCT ON (person_id)",
                )
            self.expressions.literal_count(clause)

    def select(self, node: exp.Select, parent: Scope | None, ctes: dict[str, Relation]) -> Relation:
        scope = Scope(node, parent, ctes)
        if node.args.get("joins") and node.args.get("from_") is None:
            raise QueryRejected("unsupported_syntax", "JOIN without FROM")
        from_ = node.args.get("from_")
        if isinstance(from_, exp.From):
            self.add_source(scope, from_.this, ctes)
        for join in node.args.get("joins") or []:
            self.join(scope, join, ctes)
        self.connect(scope)
        checker = self.expressions
        for join in node.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                checker.condition(on, scope)
        where = node.args.get("where")
        if isinstance(where, exp.Where):
            checker.condition(where.this, scope)
        outputs: list[tuple[str | None, Field]] = []
        for item in node.expressions:
            outputs.extend(checker.projection(item, scope))
        aliases = {name: f for name, f in outputs if name is not None}
        self.grouping(scope, aliases)
        having = node.args.get("having")
        if isinstance(having, exp.Having):
            checker.condition(having.this, scope)
        qualify = node.args.get("qualify")
        if qualify is not None:
            raise QueryRejected("unsupported_syntax", "QUALIFY is not PostgreSQL")
        self.distinct(scope, aliases, [f for _, f in outputs])
        order = node.args.get("order")
        if isinstance(order, exp.Order):
            for ordered in order.expressions:
                checker.ordering(ordered, scope, aliases)
        self.windows(scope)
        if scope.reads_person_data and not scope.has_person_data():
            scope.bound = True  # a subquery bound to an enclosing person: this scope is that person's too
        self.row_choice(node, free=scope.free)
        if scope.free and not any(f.role is Role.PERSON_KEY for _, f in outputs):
            raise QueryRejected(
                "cross_person_output",
                "a query over person data must output the person key (person_id) unless it is correlated "
                "on it; without it, rows of different persons merge",
            )
        single = (bool(scope.aggregates) and node.args.get("group") is None) or self.single_row_lookup(scope)
        limit = node.args.get("limit")
        if limit is not None and checker.literal_count(limit) <= 1:
            single = True
        if scope.bound:
            outputs = [(name, _unkeyed(f)) for name, f in outputs]
        return Relation(
            outputs,
            person=scope.free,
            bound=scope.bound,
            person_data=scope.has_person_data() or scope.reads_person_data,
            single_row=single,
        )

    # -- FROM items ----------------------------------------------------------------------------------------
    def add_source(self, scope: Scope, item: exp.Expression, ctes: dict[str, Relation]) -> Source:
        alias_node = item.args.get("alias")
        alias = pg_name(alias_node.this) if isinstance(alias_node, exp.TableAlias) else None
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            source = self.table_source(item, alias, ctes)
        elif isinstance(item, exp.Table) and (isinstance(item.this, exp.Func) or item.args.get("rows_from")):
            raise QueryRejected(
                "generated_rows",
                "set-returning functions (generate_series, unnest, ...) make rows out of nothing and are "
                "not allowed; join person and vocabulary tables instead",
            )
        elif isinstance(item, exp.Values):
            raise QueryRejected(
                "generated_rows", "VALUES lists make rows out of nothing; use CASE or IN (...) instead"
            )
        elif isinstance(item, exp.Subquery):
            inner = strip_parens(item.this)
            if isinstance(inner, exp.Table) or item.args.get("joins"):
                raise QueryRejected(
                    "unsupported_syntax", "parenthesised joins are not supported; write the joins flat"
                )
            relation = _renamed(self.query(item.this, scope.parent, ctes), alias_node)
            source = self.relation_source(alias or "", relation)
        elif isinstance(item, exp.Lateral):
            source = self.lateral(scope, item, ctes)
            alias = source.alias
        elif isinstance(item, exp.Unnest):
            raise QueryRejected("generated_rows", "unnest makes rows out of arrays and is not allowed")
        else:
            raise QueryRejected("unsupported_syntax", f"unsupported item in FROM ({type(item).__name__})")
        if not source.alias:
            raise QueryRejected("unsupported_syntax", "a subquery in FROM needs an alias")
        if source.alias in scope.sources:
            raise QueryRejected("unsupported_syntax", f"two FROM items are called {source.alias!r}")
        scope.sources[source.alias] = source
        if source.kind is SourceKind.PERSON:
            scope.classes[source.alias] = source.alias
        return source

    def table_source(self, table: exp.Table, alias: str | None, ctes: dict[str, Relation]) -> Source:
        name = pg_name(table.this) or ""
        db = table.args.get("db")
        if db is None:
            relation = ctes.get(name)
            if relation is None:
                raise QueryRejected("unknown_table", f"table {name!r} does not exist in the CDM")
            return self.relation_source(alias or name, _renamed(relation, table.args.get("alias")))
        entry = self.catalog.get(name)
        if entry is None:
            if name in known_table_names():
                raise QueryRejected(
                    "non_person_table",
                    f"table {name!r} is neither a person's data nor vocabulary and cannot be queried",
                )
            raise QueryRejected("unknown_table", f"table {name!r} does not exist in the CDM")
        alias_node = table.args.get("alias")
        if isinstance(alias_node, exp.TableAlias) and alias_node.args.get("columns"):
            raise QueryRejected("unsupported_syntax", "column alias lists on tables are not supported")
        return _catalog_source(entry, alias or name)

    def relation_source(self, alias: str, relation: Relation) -> Source:
        columns: dict[str, Field] = {}
        for name, f in relation.columns:
            if name is not None:
                if name in columns:
                    raise QueryRejected(
                        "duplicate_column",
                        f"two columns of {alias!r} are called {name!r}; rename one with AS",
                    )
                columns[name] = f
        if relation.person:
            return Source(alias, SourceKind.PERSON, columns)
        if relation.bound:
            return Source(alias, SourceKind.BOUND, {n: _unkeyed(f) for n, f in columns.items()})
        if relation.person_data:
            raise QueryRejected(
                "cross_person_subquery", f"subquery {alias!r} over person data is not keyed by person_id"
            )
        return Source(alias, SourceKind.REFERENCE, {n: _unkeyed(f) for n, f in columns.items()})

    def lateral(self, scope: Scope, item: exp.Lateral, ctes: dict[str, Relation]) -> Source:
        alias_node = item.args.get("alias")
        alias = pg_name(alias_node.this) if isinstance(alias_node, exp.TableAlias) else None
        inner = item.this
        if not isinstance(inner, exp.Subquery) or alias is None:
            raise QueryRejected("generated_rows", "LATERAL is allowed only for a named subquery")
        relation = _renamed(self.query(inner.this, scope, ctes), alias_node)
        columns = {name: _unkeyed(f) for name, f in relation.columns if name is not None}
        if relation.bound:
            return Source(alias, SourceKind.BOUND, columns, lateral=True)
        if relation.person_data:
            raise QueryRejected(
                "cross_person_subquery",
                f"LATERAL subquery {alias!r} reads person data without being correlated on person_id "
                f"(add WHERE x.person_id = <outer>.person_id)",
            )
        return Source(alias, SourceKind.REFERENCE, columns, lateral=True)

    def join(self, scope: Scope, join: exp.Join, ctes: dict[str, Relation]) -> None:
        side = str(join.args.get("side") or "").upper()
        kind = str(join.args.get("kind") or "").upper()
        method = str(join.args.get("method") or "").upper()
        if method == "NATURAL":
            raise QueryRejected("unsupported_join", "NATURAL JOIN matches columns by name; use ON or USING")
        if side in ("RIGHT", "FULL"):
            raise QueryRejected(
                "unsupported_join",
                f"{side} JOIN is not supported; write it as a LEFT JOIN from the other side",
            )
        if kind not in ("", "INNER", "CROSS", "OUTER"):
            raise QueryRejected("unsupported_join", f"{kind} JOIN is not supported")
        source = self.add_source(scope, join.this, ctes)
        source.nullable = side == "LEFT"
        using = join.args.get("using")
        if using:
            for ident in using:
                name = pg_name(ident) or ""
                if name != PERSON_KEY:
                    raise QueryRejected(
                        "unsupported_join",
                        f"USING ({name}) is allowed for person_id only; write ON a.{name} = b.{name} "
                        "(the trust then adds the person equality)",
                    )
                left = [s for s in scope.sources.values() if s is not source and name in s.columns]
                if len(left) != 1 or name not in source.columns:
                    raise QueryRejected(
                        "ambiguous_column", f"USING ({name}) needs exactly one column {name!r} on each side"
                    )
                self.equate(scope, (left[0].alias, name), (source.alias, name), None)

    # -- connecting the sources ----------------------------------------------------------------------------
    def connect(self, scope: Scope) -> None:
        """Merge person sources on key equalities, anchor lookups, bind to the outer person; then check."""
        node = scope.select
        joined: list[tuple[exp.Expression, str | None]] = []  # (conjunct, the LEFT-joined source or None)
        for join in node.args.get("joins") or []:
            target = join.this
            alias_node = target.args.get("alias")
            alias = pg_name(alias_node.this) if isinstance(alias_node, exp.TableAlias) else None
            if alias is None and isinstance(target, exp.Table):
                alias = pg_name(target.this)
            left_only = str(join.args.get("side") or "").upper() == "LEFT"
            for term in conjuncts(join.args.get("on")):
                joined.append((term, alias if left_only else None))
        where = node.args.get("where")
        if isinstance(where, exp.Where):
            joined.extend((term, None) for term in conjuncts(where.this))
        # person-key equalities first, then event keys (which add a person equality only when needed)
        for want_event in (False, True):
            for term, left_joined in joined:
                pair = self.key_pair(term, scope)
                if pair is None:
                    continue
                (a, fa), (b, fb) = pair
                if (fa.role is Role.PERSON_KEY) == want_event:
                    continue
                self.equate_refs(scope, term, a, fa, b, fb, left_joined)
        lookups = [s for s in scope.sources.values() if s.kind is SourceKind.LOOKUP]
        while any(self.anchor_lookup(scope, s, joined) for s in lookups if not s.anchored):
            pass  # a location anchored through an anchored care_site, and so on
        for source in lookups:
            if not source.anchored:
                raise QueryRejected(
                    "lookup_not_anchored",
                    f"{source.alias!r} is not person data: join it only by its key from a person's row "
                    f"(for example ON {source.alias}.{source.lookup_key} = p.{source.lookup_key})",
                )
        people = scope.person_sources()
        roots = {scope.find(s.alias) for s in people}
        if len(roots) > 1:
            names = ", ".join(sorted(s.alias for s in people))
            raise QueryRejected(
                "cross_person_join",
                f"person tables ({names}) must be joined on person_id (or on an event key such as "
                "visit_occurrence_id), so that each row holds one person's data",
            )
        if roots:
            (root,) = roots
            scope.bound = any(scope.find(alias) == root for alias in scope.bound_classes)
        else:
            scope.bound = any(s.kind is SourceKind.BOUND for s in scope.sources.values())
        for source in scope.sources.values():
            if source.kind is SourceKind.REFERENCE:
                self.reference_join(scope, source, joined)

    def key_pair(
        self, term: exp.Expression, scope: Scope
    ) -> tuple[tuple[ColumnRef, Field], tuple[ColumnRef, Field]] | None:
        term = strip_parens(term)
        if not isinstance(term, exp.EQ):
            return None
        left, right = strip_parens(term.this), strip_parens(term.expression)
        if not isinstance(left, exp.Column) or not isinstance(right, exp.Column):
            return None
        a = self.resolve(left, scope)
        b = self.resolve(right, scope)
        if a is None or b is None:
            return None
        return (a, a.field), (b, b.field)

    def equate_refs(
        self,
        scope: Scope,
        term: exp.Expression,
        a: ColumnRef,
        fa: Field,
        b: ColumnRef,
        fb: Field,
        left_joined: str | None,
    ) -> None:
        here_a, here_b = a.scope is scope, b.scope is scope
        if here_a and here_b and a.alias and b.alias:
            if left_joined is not None and left_joined not in (a.alias, b.alias):
                return  # a LEFT JOIN's ON condition restricts only the joined side
            self.equate(scope, (a.alias, None), (b.alias, None), term, fa, fb)
            return
        if left_joined is not None:
            return  # binding to the outer person through a LEFT JOIN's ON restricts only the joined side
        inner, outer = (a, b) if here_a else (b, a)
        if inner.scope is not scope or outer.scope is scope or inner.alias is None:
            return
        source = scope.sources[inner.alias]
        if (
            source.kind is SourceKind.PERSON
            and inner.field.role is Role.PERSON_KEY
            and outer.field.role is Role.OUTER_KEY
        ):
            scope.bound_classes.add(inner.alias)

    def equate(
        self,
        scope: Scope,
        a: tuple[str, str | None],
        b: tuple[str, str | None],
        term: exp.Expression | None,
        fa: Field | None = None,
        fb: Field | None = None,
    ) -> None:
        sa, sb = scope.sources[a[0]], scope.sources[b[0]]
        if fa is None:
            fa = sa.columns[a[1] or ""]
            fb = sb.columns[b[1] or ""]
        assert fb is not None
        if sa.kind is SourceKind.PERSON and sb.kind is SourceKind.PERSON:
            if fa.role is Role.PERSON_KEY and fb.role is Role.PERSON_KEY:
                scope.union(sa.alias, sb.alias)
            elif (
                fa.event is not None and fa.event == fb.event and scope.find(sa.alias) != scope.find(sb.alias)
            ):
                if term is not None:
                    _add_person_equality(term, sa, sb)
                scope.union(sa.alias, sb.alias)

    def anchor_lookup(
        self, scope: Scope, source: Source, joined: list[tuple[exp.Expression, str | None]]
    ) -> bool:
        """Anchor ``source`` when its key equals an identifier of a person row (or of an anchored lookup)."""
        for term, left_joined in joined:
            pair = self.key_pair(term, scope)
            if pair is None or left_joined not in (None, source.alias):
                continue
            (a, _), (b, _) = pair
            for mine, other in ((a, b), (b, a)):
                if (
                    mine.scope is scope
                    and mine.alias == source.alias
                    and mine.name == source.lookup_key
                    and other.field.opaque
                    and self.anchors(scope, other, source)
                ):
                    source.anchored = True
                    return True
        return False

    def anchors(self, scope: Scope, ref: ColumnRef, lookup: Source) -> bool:
        if ref.scope is not scope:
            return True  # a column of the enclosing query's row, which is one person's
        other = scope.sources.get(ref.alias or "")
        if other is None or other is lookup:
            return False
        return other.kind in (SourceKind.PERSON, SourceKind.BOUND) or other.anchored

    def reference_join(
        self, scope: Scope, source: Source, joined: list[tuple[exp.Expression, str | None]]
    ) -> None:
        """Reference data meets other rows only through an equality, so the rows it adds stay bounded.

        Without it, one person's value could decide how many vocabulary rows join (``c.concept_id <
        p.year_of_birth``), which is a count carrying that value and a cost one person controls; a
        cross join of vocabulary tables is refused for the cost alone.
        """
        if source.lateral:
            return  # a LATERAL subquery is linked inside itself, where this rule applied too
        checker = self.expressions
        linking = []
        for term, _ in joined:
            refs = checker.sources_in(term, scope)
            if source.alias in refs and (refs - {source.alias} or checker.has_outer_columns(term, scope)):
                linking.append(term)
        if not linking and len(scope.sources) == 1:
            return
        for term in linking:
            term = strip_parens(term)
            if not isinstance(term, exp.EQ):
                continue
            sides = [(checker.sources_in(x, scope), x) for x in (term.this, term.expression)]
            for (mine, mine_node), (other, other_node) in (sides, sides[::-1]):
                linked = bool(other - {source.alias}) or checker.has_outer_columns(other_node, scope)
                if mine == {source.alias} and source.alias not in other and linked:
                    if self.is_reference_key(mine_node, scope):
                        return
        raise QueryRejected(
            "reference_join",
            f"vocabulary table {source.alias!r} must be joined by an equality on one of its key columns "
            f"(concept_id, ancestor_concept_id, vocabulary_id...; e.g. ON "
            f"{source.alias}.concept_id = x.condition_concept_id): the number of rows it adds must not "
            "depend on a person's values, and vocabulary tables are not cross-joined",
        )

    def is_reference_key(self, node: exp.Expression, scope: Scope) -> bool:
        """A plain column of a vocabulary key (``concept_id``...), so an equality on it fans out boundedly."""
        node = strip_parens(node)
        if not isinstance(node, exp.Column):
            return False
        ref = self.resolve(node, scope)
        return ref is not None and ref.field.reference_key

    def single_row_lookup(self, scope: Scope) -> bool:
        """One catalog table filtered by equality on its whole primary key: at most one row."""
        if len(scope.sources) != 1 or scope.select.args.get("joins"):
            return False
        (source,) = scope.sources.values()
        if not source.primary_key or source.kind is not SourceKind.REFERENCE:
            return False  # vocabulary only: its keys are the same everywhere and checked at onboarding
        where = scope.select.args.get("where")
        fixed: set[str] = set()
        for term in conjuncts(where.this if isinstance(where, exp.Where) else None):
            term = strip_parens(term)
            if not isinstance(term, exp.EQ):
                continue
            for mine, other in ((term.this, term.expression), (term.expression, term.this)):
                mine = strip_parens(mine)
                if (
                    isinstance(mine, exp.Column)
                    and pg_name(mine.args.get("table")) in (None, source.alias)
                    and source.alias not in self.expressions.sources_in(other, scope)
                ):
                    fixed.add(pg_name(mine.this) or "")
        return set(source.primary_key) <= fixed

    # -- resolving columns ---------------------------------------------------------------------------------
    def resolve(self, column: exp.Column, scope: Scope) -> ColumnRef | None:
        """Find what ``column`` names, in this scope or an enclosing one; None for an output-alias name."""
        name = pg_name(column.this) or ""
        qualifier = pg_name(column.args.get("table"))
        current: Scope | None = scope
        while current is not None:
            if qualifier is not None:
                source = current.sources.get(qualifier)
                if source is not None:
                    f = source.columns.get(name)
                    if f is None:
                        raise QueryRejected("unknown_column", f"column {qualifier}.{name} does not exist")
                    f = replace(f, nullable=True) if source.nullable else f
                    return ColumnRef(current, qualifier, f if current is scope else _outer(f), name)
            else:
                matches = [s for s in current.sources.values() if name in s.columns]
                if len(matches) > 1:
                    using_merged = all(
                        s.columns[name].role is Role.PERSON_KEY for s in matches
                    ) and self.same_person(current, matches)
                    if not using_merged:
                        raise QueryRejected(
                            "ambiguous_column",
                            f"column {name!r} is in more than one table; qualify it (e.g. p.{name})",
                        )
                if matches:
                    f = matches[0].columns[name]
                    f = replace(f, nullable=True) if matches[0].nullable else f
                    return ColumnRef(current, matches[0].alias, f if current is scope else _outer(f), name)
            current = current.parent
        return None

    def same_person(self, scope: Scope, sources: list[Source]) -> bool:
        try:
            return len({scope.find(s.alias) for s in sources}) == 1
        except KeyError:
            return False

    # -- GROUP BY, DISTINCT, windows -----------------------------------------------------------------------
    def grouping(self, scope: Scope, aliases: dict[str, Field]) -> None:
        group = scope.select.args.get("group")
        keys: list[Field] = []
        if isinstance(group, exp.Group):
            for key, value in group.args.items():
                if key != "expressions" and value not in (None, [], False):
                    raise QueryRejected(
                        "cross_person_aggregate",
                        "GROUPING SETS / ROLLUP / CUBE add total rows across persons; group by person_id",
                    )
            for item in group.expressions:
                if isinstance(item, (exp.Rollup, exp.Cube, exp.GroupingSets)):
                    raise QueryRejected(
                        "cross_person_aggregate",
                        "GROUPING SETS / ROLLUP / CUBE add total rows across persons; group by person_id",
                    )
                keys.append(self.expressions.key_expression(item, scope, aliases))
        aggregated = bool(scope.aggregates) or isinstance(group, exp.Group) or scope.select.args.get("having")
        if aggregated and scope.free and any(f.role is Role.PERSON_KEY and f.nullable for f in keys):
            raise QueryRejected(
                "cross_person_aggregate",
                "GROUP BY a person_id from the outer side of a LEFT JOIN puts every unmatched person in one "
                "NULL group; group by the person_id of the table you join from",
            )
        if aggregated and scope.free and not any(_sound_key(f) for f in keys):
            raise QueryRejected(
                "cross_person_aggregate",
                "aggregates over person data must be grouped by the person key (GROUP BY x.person_id) "
                "or computed in a subquery correlated on it",
            )

    def distinct(self, scope: Scope, aliases: dict[str, Field], outputs: list[Field]) -> None:
        distinct = scope.select.args.get("distinct")
        if not isinstance(distinct, exp.Distinct):
            return
        on = distinct.args.get("on")
        if on is None:
            # plain DISTINCT: rows carry the person key (checked on the output), so persons never merge,
            # unless that key is NULL for rows of several persons
            if scope.free and not any(_sound_key(f) for f in outputs):
                raise QueryRejected(
                    "cross_person_row_choice",
                    "DISTINCT merges rows whose person_id is NULL across persons: select the person_id "
                    "of the table you join from, not of the outer side of a LEFT JOIN",
                )
            return
        items = on.expressions if isinstance(on, exp.Tuple) else [on]
        keys = [self.expressions.key_expression(item, scope, aliases) for item in items]
        if scope.free and not any(_sound_key(f) for f in keys):
            raise QueryRejected(
                "cross_person_row_choice",
                "DISTINCT ON picks rows across persons unless person_id is one of its expressions",
            )

    def windows(self, scope: Scope) -> None:
        named: dict[str, exp.Window] = {}
        for definition in scope.select.args.get("windows") or []:
            name = pg_name(definition.this) if isinstance(definition.this, exp.Identifier) else None
            if name:
                named[name] = definition
        for window in scope.windows:
            partition = list(window.args.get("partition_by") or [])
            reference = window.args.get("alias")
            seen: set[str] = set()
            while isinstance(reference, exp.Identifier):
                name = pg_name(reference) or ""
                base = named.get(name)
                if base is None or name in seen:
                    raise QueryRejected("unsupported_syntax", f"window {name!r} is not defined")
                seen.add(name)
                partition += list(base.args.get("partition_by") or [])
                reference = base.args.get("alias")
            fields = [self.expressions.key_expression(p, scope, {}) for p in partition]
            if scope.free and not any(_sound_key(f) for f in fields):
                raise QueryRejected(
                    "cross_person_window",
                    "window functions over person data must be partitioned by the person key "
                    "(OVER (PARTITION BY x.person_id ...))",
                )


def _merged(a: Field, b: Field) -> Field:
    """The field of a column that is ``a`` in some rows and ``b`` in others (bounds: the larger)."""
    return Field(
        _unify(a.type, b.type),
        nullable=a.nullable or b.nullable,
        shift=max(a.shift, b.shift),
        digits=max(a.digits, b.digits),
        growth=max(a.growth, b.growth),
    )


def _sound_key(f: Field) -> bool:
    """A person key that groups one person's rows: not NULL-extended, where NULL would merge persons."""
    return f.role is Role.PERSON_KEY and not f.nullable


def _catalog_source(entry: CatalogTable, alias: str) -> Source:
    columns: dict[str, Field] = {}
    for name, c in entry.columns.items():
        if entry.kind is TableKind.PERSON and name == PERSON_KEY:
            role = Role.PERSON_KEY
        elif c.identifier:
            role = Role.IDENTIFIER
        else:
            role = Role.VALUE
        columns[name] = Field(
            c.type,
            role,
            c.event,
            digits=_DATA_DIGITS.get(c.type, 0.0),
            growth=1.0 if c.type is SqlType.TEXT else 0.0,
            reference_key=c.reference_key,
        )
    kind = {
        TableKind.PERSON: SourceKind.PERSON,
        TableKind.REFERENCE: SourceKind.REFERENCE,
        TableKind.LOOKUP: SourceKind.LOOKUP,
    }[entry.kind]
    return Source(
        alias, kind, columns, lookup_key=LOOKUP_TABLES.get(entry.name), primary_key=entry.primary_key
    )


#: Bounds on the integer digits of data values: int8 for integers, the documented domain for numerics.
_DATA_DIGITS = {SqlType.INT: 19.0, SqlType.NUMERIC: 100.0}


def _renamed(relation: Relation, alias: exp.Expression | None) -> Relation:
    """Apply a column alias list (``AS x(a, b)``) by position."""
    if not isinstance(alias, exp.TableAlias) or not alias.args.get("columns"):
        return relation
    names = [pg_name(c) for c in alias.args["columns"]]
    if len(names) > len(relation.columns):
        raise QueryRejected("unsupported_syntax", "the column alias list is longer than the query's columns")
    columns = [(names[i] if i < len(names) else name, f) for i, (name, f) in enumerate(relation.columns)]
    return Relation(columns, relation.person, relation.bound, relation.person_data, relation.single_row)


def _unkeyed(f: Field) -> Field:
    """A person key seen from outside its own rows is just an opaque identifier."""
    if f.role in (Role.PERSON_KEY, Role.OUTER_KEY):
        return Field(f.type, Role.IDENTIFIER, f.event, f.constant)
    return f


def _outer(f: Field) -> Field:
    """A column of an enclosing scope: a fixed value of the outer row; its person key marks a correlation."""
    if f.role is Role.PERSON_KEY:
        return Field(f.type, Role.OUTER_KEY, f.event, f.constant)
    return f


def _unify(a: SqlType, b: SqlType) -> SqlType:
    if a is b or b is SqlType.NULL:
        return a
    if a is SqlType.NULL:
        return b
    if {a, b} <= {SqlType.INT, SqlType.NUMERIC}:
        return SqlType.NUMERIC
    if {a, b} <= {SqlType.DATE, SqlType.TIMESTAMP}:
        return SqlType.TIMESTAMP
    if SqlType.UNKNOWN in (a, b):
        return b if a is SqlType.UNKNOWN else a
    return SqlType.OTHER


def unify(types: list[SqlType]) -> SqlType:
    result = SqlType.NULL
    for t in types:
        result = _unify(result, t)
    return result


def _add_person_equality(term: exp.Expression, a: Source, b: Source) -> None:
    """Turn ``a.visit_occurrence_id = b.visit_occurrence_id`` into ``(... AND a.person_id = b.person_id)``."""
    keys_a, keys_b = a.person_keys, b.person_keys
    if not keys_a or not keys_b:
        raise QueryRejected("cross_person_join", "an event-key join needs person_id on both sides")
    equality = exp.EQ(
        this=exp.column(keys_a[0], table=a.alias, quoted=True),
        expression=exp.column(keys_b[0], table=b.alias, quoted=True),
    )
    replacement = exp.And(this=term.copy(), expression=equality)
    term.replace(exp.Paren(this=replacement))


def walk_own_scope(node: exp.Expression) -> Iterator[exp.Expression]:
    """Nodes of an expression, not descending into subqueries (they are scopes of their own)."""
    yield node
    for child in node.iter_expressions():
        if isinstance(child, (exp.Subquery, exp.Select, exp.SetOperation)):
            continue
        yield from walk_own_scope(child)
