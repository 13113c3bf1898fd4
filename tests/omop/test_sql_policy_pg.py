"""The re-emitted SQL against real PostgreSQL: valid, runnable as the reader, and meaning the same thing.

Layer 3 sends PostgreSQL the SQL that sqlglot generated from the validated tree, not the researcher's
text. These tests make sure that substitution is faithful: every legitimate corpus query runs as the
read-only reader, and returns exactly the rows the researcher's own text returns (with ``omop`` on the
search path for the original, since the original may leave tables unqualified).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from omop.sql_policy import validate
from tests.conftest import OmopDb
from tests.omop.sql_corpus import ALLOWED_CALLS, ALLOWED_WINDOW_CALLS, LEGIT

pytestmark = pytest.mark.services


def _rows(cur: psycopg.Cursor[Any], sql: str) -> list[tuple[Any, ...]]:
    cur.execute(sql.encode())  # bytes: no client-side placeholder processing of '%' in the text
    return sorted(cur.fetchall(), key=repr)


def test_legit_corpus_runs_as_reader_and_matches_the_original_text(fixture_db: OmopDb) -> None:
    with psycopg.connect(fixture_db.reader_url) as conn, conn.cursor() as cur:
        conn.read_only = True
        checked = non_empty = 0
        for name, sql in LEGIT:
            emitted = validate(sql).sql
            cur.execute("SET LOCAL search_path = omop")
            original = _rows(cur, sql.rstrip().rstrip(";"))
            cur.execute("SET LOCAL search_path = pg_catalog")  # the emitted text must not need a search path
            again = _rows(cur, emitted)
            assert again == original, name
            checked += 1
            non_empty += bool(original)
        conn.rollback()
    assert checked == len(LEGIT)
    assert non_empty >= len(LEGIT) // 3  # the comparison must be about real rows, not empty results


def test_flip_example_finds_the_fixture_cohort(fixture_db: OmopDb) -> None:
    emitted = validate(LEGIT[0][1]).sql
    with psycopg.connect(fixture_db.reader_url) as conn:
        rows = conn.execute(emitted.encode()).fetchall()
    assert rows, "the FLIP worked example should select some persons in the fixture data"


@pytest.mark.parametrize(
    "literal",
    [
        "'plain'",
        "'it''s'",
        "'back\\slash'",
        "'trailing backslash\\'",
        "$$dollar 'quoted' \\ text$$",
        "$tag$with $$ inside$tag$",
        "'unicode: é ß 漢字 \U0001f600'",
        "'newline\nand\ttab'",
        "'--not a comment'",
        "'/* not a comment */'",
        "'semi;colon'",
        "'%s %(x)s ?'",
        "'\"double\" quotes'",
    ],
)
def test_string_literals_keep_their_value(fixture_db: OmopDb, literal: str) -> None:
    sql = f"SELECT p.person_id, {literal} AS v FROM omop.person p"
    emitted = validate(sql).sql
    with psycopg.connect(fixture_db.reader_url) as conn:
        original = sorted(conn.execute(sql.encode()).fetchall())
        again = sorted(conn.execute(emitted.encode()).fetchall())
    assert original and again == original


@pytest.mark.parametrize(
    "identifier",
    ['"Mixed Case"', '"with ""quote"""', '"unicode é"', '"select"', "plain_name", "UPPER_NAME"],
)
def test_output_column_names_match_what_postgres_reports(fixture_db: OmopDb, identifier: str) -> None:
    query = validate(f"SELECT p.person_id, p.year_of_birth AS {identifier} FROM omop.person p")
    with psycopg.connect(fixture_db.reader_url) as conn, conn.cursor() as cur:
        cur.execute(query.sql.encode())
        assert cur.description is not None
        assert tuple(col.name for col in cur.description) == query.output_columns


def test_documented_functions_run_in_postgres_as_emitted(fixture_db: OmopDb) -> None:
    """Every allowlisted call the docs promise, as sqlglot re-emits it, is valid PostgreSQL."""
    with psycopg.connect(fixture_db.reader_url) as conn:
        for call in ALLOWED_CALLS:
            emitted = validate(f"SELECT p.person_id, {call} AS v FROM omop.person p GROUP BY p.person_id").sql
            conn.execute(emitted.encode()).fetchall()
        for call in ALLOWED_WINDOW_CALLS:
            emitted = validate(
                f"SELECT p.person_id, {call} OVER (PARTITION BY p.person_id ORDER BY p.year_of_birth) AS v "
                "FROM omop.person p"
            ).sql
            conn.execute(emitted.encode()).fetchall()
