"""Is schema ``omop`` in a database ours? Checked before anything writes to it.

A trust may point the tools at a database that already has an ``omop`` schema from another ETL. Silently
adding grants to, or loading rows into, tables we did not create would be worse than refusing, so every
writer (init-db, seed, load-eunomia) first compares the catalog with the tables our DDL declares.
"""

from __future__ import annotations

from typing import Any

import psycopg

from omop import schema
from omop.errors import ForeignSchemaError as ForeignSchemaError
from omop.errors import SchemaMissingError as SchemaMissingError

_KINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}


def schema_conflicts(conn: psycopg.Connection[Any]) -> list[str]:
    """What in schema ``omop`` is not what our DDL would create (empty: absent or compatible).

    Missing tables are not conflicts (init-db creates them); extra relations, tables with other columns or
    column types, and non-table objects under our table names are.
    """
    expected = schema.table_columns()
    rows = conn.execute(
        """
        SELECT c.relname, c.relkind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        ORDER BY c.relname
        """,
        (schema.SCHEMA,),
    ).fetchall()
    problems: list[str] = []
    for name, kind in rows:
        if name not in expected or kind != "r":
            problems.append(
                f"{_KINDS.get(kind, 'relation')} omop.{name} is not one of the CDM tables we create"
            )
            continue
        actual = conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (schema.SCHEMA, name),
        ).fetchall()
        want = [(c.name, c.type) for c in expected[name]]
        if [tuple(r) for r in actual] != want:
            problems.append(
                f"table omop.{name} has columns that differ from the OMOP CDM 5.4 table we create"
            )
    return problems


def conflict_message(problems: list[str]) -> str:
    """One line naming the first problem and how many more there are."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"schema omop already holds data that is not ours: {problems[0]}{more}; nothing was changed"


def require_compatible_schema(conn: psycopg.Connection[Any]) -> None:
    """Raise unless schema ``omop`` has all our tables and nothing foreign (checked before loading data)."""
    problems = schema_conflicts(conn)
    if problems:
        raise ForeignSchemaError(conflict_message(problems))
    present = {
        r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema.SCHEMA,))
    }
    missing = [t for t in schema.TABLES if t not in present]
    if missing:
        raise SchemaMissingError(
            f"schema omop is missing {len(missing)} table(s) (e.g. omop.{missing[0]}): "
            "run 'omopfed trust init-db' on this database first"
        )
