"""The aggregation statement, run as the real reader role, agrees with direct SQL over the same rows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import psycopg
import pytest

from omop.demographics import AGE_BANDS
from tests.conftest import OmopDb
from trust_worker.aggregate_sql import cohort_statistics_sql
from trust_worker.executor import ExecutionFailed, Limits, ReaderExecutor
from trust_worker.policy_file import TrustPolicy

pytestmark = pytest.mark.services


def limits(**over: Any) -> Limits:
    """The default policy's limits (the one source), with some changed."""
    return replace(TrustPolicy().limits(), **over)


def direct(admin_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(admin_url) as conn:
        conn.execute("SET search_path = omop")
        return conn.execute(sql).fetchall()


def test_counts_persons_not_rows_and_matches_direct_sql(fixture_db: OmopDb) -> None:
    # one row per image: persons with several images appear several times
    cohort = "SELECT io.person_id, io.accession_id, io.modality_concept_id FROM omop.image_occurrence io"
    executor = ReaderExecutor(fixture_db.reader_url)
    person_count, row_count, columns, sex, age = executor.fetch_one(
        cohort_statistics_sql(cohort, ["person_id", "accession_id", "modality_concept_id"]), limits()
    )
    executor.close()
    [(persons, rows)] = direct(
        fixture_db.admin_url, "SELECT count(DISTINCT person_id), count(*) FROM image_occurrence"
    )
    assert (person_count, row_count) == (persons, rows) == (12, 24)
    assert columns["accession_id"] == [24, 0]
    expected_sex = dict(
        cast(
            list[tuple[object, object]],  # two columns: sex, count
            direct(
                fixture_db.admin_url,
                """
        SELECT CASE gender_concept_id WHEN 8507 THEN 'Male' WHEN 8532 THEN 'Female' ELSE 'Unknown' END,
               count(*)
        FROM person WHERE person_id IN (SELECT person_id FROM image_occurrence) GROUP BY 1""",
            ),
        )
    )
    assert sex == expected_sex == {"Male": 6, "Female": 6}
    assert sum(age.values()) == 12 and set(age) <= set(AGE_BANDS)


def test_null_counts_and_odd_column_names(fixture_db: OmopDb) -> None:
    cohort = (
        'SELECT p.person_id, p.birth_datetime AS "Birth ""time""", NULL::int AS "select" FROM omop.person p'
    )
    executor = ReaderExecutor(fixture_db.reader_url)
    _, rows, columns, _, _ = executor.fetch_one(
        cohort_statistics_sql(cohort, ["person_id", 'Birth "time"', "select"]), limits()
    )
    executor.close()
    assert columns["select"] == [0, rows]
    nn, nl = columns['Birth "time"']
    assert nn + nl == rows == 16


def test_many_columns_are_chunked(fixture_db: OmopDb) -> None:
    names = [f"c{i}" for i in range(120)]
    cohort = (
        "SELECT p.person_id, " + ", ".join(f"p.year_of_birth AS {n}" for n in names) + " FROM omop.person p"
    )
    executor = ReaderExecutor(fixture_db.reader_url)
    _, _, columns, _, _ = executor.fetch_one(cohort_statistics_sql(cohort, ["person_id", *names]), limits())
    executor.close()
    assert len(columns) == 121 and columns["c119"][0] + columns["c119"][1] == 16


def test_failures_are_classified_for_the_audit_log_without_server_text(fixture_db: OmopDb) -> None:
    executor = ReaderExecutor(fixture_db.reader_url)
    with pytest.raises(ExecutionFailed) as slow:
        executor.fetch_one(
            "SELECT count(*) FROM generate_series(1, 100000000) a", limits(statement_timeout_s=0.3)
        )
    assert (slow.value.cause, slow.value.sqlstate) == ("statement_timeout", "57014")
    assert "0.3 s" in str(slow.value)
    with pytest.raises(ExecutionFailed) as bad:
        executor.fetch_one("SELECT 'secret-value'::int", limits())
    assert (bad.value.cause, bad.value.sqlstate, bad.value.error_class) == (
        "database_error",
        "22P02",
        "InvalidTextRepresentation",
    )
    assert "secret-value" not in str(bad.value) and "secret-value" not in str(bad.value.audit_record())
    with pytest.raises(ExecutionFailed) as write:
        executor.fetch_one("CREATE TABLE omop.x (a int)", limits())
    assert write.value.cause in ("read_only", "insufficient_privilege")
    # the connection is still usable after failures
    assert executor.fetch_one("SELECT 1", limits()) == (1,)
    executor.close()


def test_multiple_statements_are_refused_by_the_driver_too(fixture_db: OmopDb) -> None:
    executor = ReaderExecutor(fixture_db.reader_url)
    with pytest.raises(ExecutionFailed):
        executor.fetch_one("SELECT 1; SELECT 2", limits())
    executor.close()


def test_limits_are_set_for_each_statement(fixture_db: OmopDb) -> None:
    executor = ReaderExecutor(fixture_db.reader_url)
    show = (
        "SELECT current_setting('work_mem'), current_setting('statement_timeout'),"
        " current_setting('temp_file_limit'), current_setting('transaction_read_only'),"
        " current_setting('search_path')"
    )
    first = executor.fetch_one(show, limits(statement_timeout_s=7, work_mem_mb=8, temp_file_limit_mb=3))
    # each call brings its own limits, nothing carries over from the previous statement
    second = executor.fetch_one(show, limits(statement_timeout_s=9, work_mem_mb=16, temp_file_limit_mb=5))
    # a sub-millisecond policy value is 1 ms, never 0 (which PostgreSQL reads as "no timeout")
    tiny = executor.fetch_one(
        "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
        limits(statement_timeout_s=30, lock_timeout_s=0.0004),
    )
    executor.close()
    assert first == ("8MB", "7s", "3MB", "on", "omop")
    assert second == ("16MB", "9s", "5MB", "on", "omop")
    assert tiny == ("30s", "1ms")
