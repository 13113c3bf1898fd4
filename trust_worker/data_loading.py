"""What every loader does around its data: check the target, empty it on request, rebuild indexes.

Loaders (synthetic, Eunomia) write in one transaction on a connection they own; these helpers run inside
it, so a failure anywhere leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from omop import schema
from omop.errors import DataPresentError as DataPresentError
from trust_worker.concepts import CATALOGUE, CONCEPT_CLASSES, DOMAINS, VOCABULARIES, Concept
from trust_worker.schema_checks import require_compatible_schema


def tables_with_rows(conn: psycopg.Connection[Any]) -> list[str]:
    """The omop tables that hold at least one row."""
    found = []
    for table in schema.TABLES:
        q = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(
            sql.Identifier(schema.SCHEMA), sql.Identifier(table)
        )
        row = conn.execute(q).fetchone()
        if row is not None and row[0]:
            found.append(table)
    return found


def prepare_for_load(conn: psycopg.Connection[Any], *, replace: bool) -> None:
    """Check the schema is ours and empty; with ``replace``, empty it first (same transaction)."""
    require_compatible_schema(conn)
    full = tables_with_rows(conn)
    if not full:
        return
    if not replace:
        raise DataPresentError(
            f"omop tables already hold data (e.g. omop.{full[0]}): use --replace to delete it and load anew"
        )
    conn.execute(
        sql.SQL("TRUNCATE {}").format(
            sql.SQL(", ").join(sql.Identifier(schema.SCHEMA, t) for t in schema.TABLES)
        )
    )


def tune_session_for_bulk(conn: psycopg.Connection[Any]) -> None:
    """Transaction-local settings for loading: memory for index builds, no lock waits forever."""
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute("SET LOCAL lock_timeout = '15s'")


def drop_secondary_indexes(conn: psycopg.Connection[Any]) -> None:
    """Drop the DDL's secondary indexes: building them once after a bulk load is much faster."""
    for index in schema.indexes():
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema.SCHEMA, index.name)))


def create_secondary_indexes(conn: psycopg.Connection[Any]) -> None:
    for index in schema.indexes():
        conn.execute(index.create_sql.encode())


def analyze(conn: psycopg.Connection[Any], tables: Iterable[str] = schema.TABLES) -> None:
    """Fresh planner statistics so the first cohort queries after a load get sensible plans."""
    for table in tables:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema.SCHEMA, table)))


def copy_rows(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY ``rows`` into ``omop.<table>``; returns how many were written."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema.SCHEMA, table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    n = 0
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


CONCEPT_COLUMNS = (
    "concept_id",
    "concept_name",
    "domain_id",
    "vocabulary_id",
    "concept_class_id",
    "standard_concept",
    "concept_code",
    "valid_start_date",
    "valid_end_date",
    "invalid_reason",
)


def write_catalogue(conn: psycopg.Connection[Any], concepts: Sequence[Concept] = CATALOGUE) -> None:
    """Concept rows for ``concepts`` (plus each standard concept as its own level-0 ancestor, as in the
    OHDSI vocabulary) and the vocabulary, domain and concept-class rows they refer to."""
    copy_rows(conn, "concept", CONCEPT_COLUMNS, (c.row() for c in concepts))
    copy_rows(
        conn,
        "concept_ancestor",
        (
            "ancestor_concept_id",
            "descendant_concept_id",
            "min_levels_of_separation",
            "max_levels_of_separation",
        ),
        ((c.concept_id, c.concept_id, 0, 0) for c in concepts if c.standard_concept == "S"),
    )
    copy_rows(
        conn,
        "vocabulary",
        (
            "vocabulary_id",
            "vocabulary_name",
            "vocabulary_reference",
            "vocabulary_version",
            "vocabulary_concept_id",
        ),
        ((vid, name, "omop-federation", None, 0) for vid, name in VOCABULARIES),
    )
    copy_rows(conn, "domain", ("domain_id", "domain_name", "domain_concept_id"), ((d, d, 0) for d in DOMAINS))
    copy_rows(
        conn,
        "concept_class",
        ("concept_class_id", "concept_class_name", "concept_class_concept_id"),
        ((c, c, 0) for c in CONCEPT_CLASSES),
    )
