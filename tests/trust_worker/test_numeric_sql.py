"""Numeric statistics in PostgreSQL, run as the real reader role, checked against direct SQL.

Three trusts are three real databases filled by the bulk synthetic generator with different seeds and
sizes. Each answers the Flower six-feature cohort with the trust-side code (type discovery, column
resolution, the statistics statement, disclosure control); the hub-side pooling combines them; the result
must equal a direct computation over the union of all trusts' rows (numeric arithmetic in PostgreSQL) to
1e-9 relative, and the protected pooled histogram must hold exactly the union's values per cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub_broker.numeric_pooling import pool_numeric
from omop.disclosure import is_small
from omop.numeric_disclosure import protect_numeric
from omop.numeric_spec import HistogramSpec, NumericRequest
from omop.sql_policy import validate
from tests.conftest import READER_TEST_PASSWORD, OmopDb, PgServer, create_database, drop_database
from trust_worker.executor import ExecutionFailed, ReaderExecutor
from trust_worker.numeric_sql import (
    NumericRejected,
    clamped_statistics_sql,
    column_types_sql,
    numeric_statistics_sql,
    resolve_columns,
)
from trust_worker.policy_file import TrustPolicy
from trust_worker.synthetic_data import seed

pytestmark = pytest.mark.services

T = 10
LIMITS = TrustPolicy().limits()
FLOWER_SQL = (
    Path(__file__).resolve().parents[2] / "omopfed" / "examples" / "flower-six-features.sql"
).read_text()
FEATURES = ("age", "bmi", "systolic_bp", "diastolic_bp", "ldl_cholesterol", "hba1c")
GRIDS = {
    "bmi": HistogramSpec(lower=15, upper=45, bins=10),
    "age": HistogramSpec(lower=0, upper=100, bins=10),
    "systolic_bp": HistogramSpec(lower=90, upper=170, bins=16),
    "hba1c": HistogramSpec(lower=4, upper=9, bins=200),  # fine grid: many small bins must be merged
}


@pytest.fixture(scope="module")
def trusts(pg_server: PgServer) -> Iterator[list[OmopDb]]:
    """Three seeded trust databases (schema, reader role, bulk data), shared by this module's tests."""
    from trust_worker.database_setup import init_db, reader_url

    made: list[str] = []
    try:
        for persons, seed_value in ((1200, 11), (2500, 12), (700, 13)):
            url = create_database(pg_server.admin_url, "num")
            made.append(url)
            init_db(url, READER_TEST_PASSWORD)
            seed(url, persons=persons, seed=seed_value)
        yield [OmopDb(url, reader_url(url, READER_TEST_PASSWORD)) for url in made]
    finally:
        for url in made:
            drop_database(pg_server.admin_url, url)


def answer(db: OmopDb, sql: str, request: NumericRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a trust does: validate, discover types, resolve columns, aggregate in SQL, protect.

    Returns (raw statement output, released numeric dict).
    """
    validated = validate(sql)
    executor = ReaderExecutor(db.reader_url)
    try:
        (types,) = executor.fetch_one(column_types_sql(validated.sql, validated.output_columns), LIMITS)
        columns = resolve_columns(request, validated.output_columns, types)
        (raw,) = executor.fetch_one(
            numeric_statistics_sql(validated.sql, columns, request.histograms), LIMITS
        )
    finally:
        executor.close()
    return raw, protect_numeric(raw, T, request.histograms)


def answer_unvalidated(db: OmopDb, cohort: str, columns: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The statistics statement and disclosure control over ``cohort`` as given, without the validator.

    For properties of the statement itself, independent of which cohorts the SQL policy accepts.
    """
    executor = ReaderExecutor(db.reader_url)
    try:
        (raw,) = executor.fetch_one(numeric_statistics_sql(cohort, columns, {}), LIMITS)
    finally:
        executor.close()
    return raw, protect_numeric(raw, T)


def direct_one(admin_url: str, sql: str) -> tuple[Any, ...]:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return tuple(row)


def rel_close(actual: float, expected: float, rel: float = 1e-9) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=0.0)


# -- the federated result equals the union -------------------------------------------------------------
def test_pooled_statistics_equal_direct_sql_over_the_union(trusts: list[OmopDb], pg_server: PgServer) -> None:
    request = NumericRequest(histograms=GRIDS)
    released = [answer(db, FLOWER_SQL, request)[1] for db in trusts]
    for numeric in released:
        assert set(numeric) == set(FEATURES)
        assert all(entry["status"] == "released" for entry in numeric.values())
    pooled = pool_numeric(released, T, GRIDS)

    # The union of every trust's cohort rows, gathered by the test (never by product code) into one table.
    union_url = create_database(pg_server.admin_url, "union")
    try:
        with psycopg.connect(union_url) as target:
            target.execute(
                "CREATE TABLE u (trust int, person_id bigint, "
                + ", ".join(f"{f} numeric" for f in FEATURES)
                + ")"
            )
            for index, db in enumerate(trusts):
                with psycopg.connect(db.admin_url) as source:
                    rows = source.execute(f"SELECT * FROM ({FLOWER_SQL}) AS c").fetchall()
                with target.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO u VALUES (%s, {', '.join(['%s'] * 7)})", [(index, *row) for row in rows]
                    )
        for feature in FEATURES:
            n, mean, sd = direct_one(
                union_url, f"SELECT count({feature}), avg({feature}), stddev_samp({feature}) FROM u"
            )
            got = pooled[feature]
            assert got["status"] == "released" and got["trusts"] == 3
            assert got["n"] == n
            assert rel_close(got["mean"], float(mean)), (feature, got["mean"], mean)
            assert rel_close(got["sd"], float(sd)), (feature, got["sd"], sd)

        for feature, spec in GRIDS.items():
            hist = pooled[feature]["histogram"]
            assert sum(cell["count"] for cell in hist) == pooled[feature]["n"]
            assert all(not is_small(cell["count"], T) for cell in hist)
            width_bucket = f"width_bucket({feature}::float8, {spec.lower}, {spec.upper}, {spec.bins})"
            bucket = f"least(greatest({width_bucket}, 1), {spec.bins}) - 1"
            for cell in hist:
                first = 0 if cell["lower"] is None else round((cell["lower"] - spec.lower) / spec.width)
                last = (
                    spec.bins - 1
                    if cell["upper"] is None
                    else round((cell["upper"] - spec.lower) / spec.width) - 1
                )
                (expected,) = direct_one(
                    union_url,
                    f"SELECT count(*) FROM u WHERE {feature} IS NOT NULL "
                    f"AND {bucket} BETWEEN {first} AND {last}",
                )
                assert cell["count"] == expected, (feature, cell)

        # the fine hba1c grid (200 bins of 0.025) must have been coarsened, not emptied
        assert 1 < len(pooled["hba1c"]["histogram"]) < 200
        (true_median,) = direct_one(
            union_url, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY bmi) FROM u"
        )
        median = pooled["bmi"]["quantiles"]["median"]
        assert abs(median - float(true_median)) <= GRIDS["bmi"].width
    finally:
        drop_database(pg_server.admin_url, union_url)


# -- one trust, against direct SQL ---------------------------------------------------------------------
def test_raw_statistics_match_direct_sql_with_odd_names_and_large_offsets(trusts: list[OmopDb]) -> None:
    db = trusts[0]
    cohort = (
        'SELECT p.person_id, p.year_of_birth AS "Year ""of"" birth", '
        "1000000000 + p.year_of_birth / 7.0 AS shifted, "
        "CASE WHEN p.day_of_birth % 5 = 0 THEN CAST('NaN' AS NUMERIC) "
        "     WHEN p.day_of_birth % 7 = 0 THEN CAST('Infinity' AS NUMERIC) "
        "     ELSE CAST(p.month_of_birth AS NUMERIC) END AS special "
        "FROM omop.person AS p"
    )
    request = NumericRequest(histograms={"special": HistogramSpec(lower=0, upper=12, bins=4)})
    raw, released = answer(db, cohort, request)
    assert raw["cohort_persons"] == 1200
    assert set(raw["columns"]) == {'Year "of" birth', "shifted", "special"}

    # year of birth: exact moments
    n, mean, var_pop = direct_one(
        db.admin_url,
        "SELECT count(year_of_birth), avg(year_of_birth), var_pop(year_of_birth) FROM omop.person",
    )
    yob = raw["columns"]['Year "of" birth']
    assert yob["persons"] == n == 1200
    assert rel_close(yob["mean"], float(mean), 1e-12) and rel_close(yob["m2"], float(var_pop) * n, 1e-9)

    # a mean of 1e9 with a spread of ~4: the corrected two-pass keeps M2 accurate
    mean, var_pop = direct_one(
        db.admin_url,
        "SELECT avg(1000000000 + year_of_birth / 7.0), var_pop(1000000000 + year_of_birth / 7.0) "
        "FROM omop.person",
    )
    shifted = raw["columns"]["shifted"]
    assert rel_close(shifted["mean"], float(mean), 1e-12)
    # each value is rounded to double (~1e-7 absolute at 1e9) before any arithmetic: that alone bounds
    # the agreement with PostgreSQL's exact numeric variance to ~1e-7 relative; a naive sum-of-squares
    # formula would lose every digit here (1e18 - 1e18)
    assert rel_close(shifted["m2"], float(var_pop) * 1200, 1e-6)

    # NaN and Infinity count as missing; the histogram covers exactly the finite values
    (finite,) = direct_one(
        db.admin_url,
        "SELECT count(*) FROM omop.person "
        "WHERE NOT coalesce(day_of_birth % 5 = 0, false) AND NOT coalesce(day_of_birth % 7 = 0, false)",
    )
    special = raw["columns"]["special"]
    assert special["persons"] == finite
    assert len(special["histogram"]) == 4 and sum(special["histogram"]) == finite
    (low,) = direct_one(
        db.admin_url,
        "SELECT count(*) FROM omop.person "
        "WHERE NOT coalesce(day_of_birth % 5 = 0, false) AND NOT coalesce(day_of_birth % 7 = 0, false) "
        "AND month_of_birth < 3",
    )
    assert special["histogram"][0] == low
    # 1200 persons, ~34% missing: the missing group is large, so the column is released
    assert released["special"]["status"] == "released" and released["special"]["n"] == finite
    assert set(released["special"]) == {"status", "n", "mean", "m2", "histogram"}


def test_rows_without_a_person_do_not_count(trusts: list[OmopDb]) -> None:
    db = trusts[1]
    cohort = (
        "SELECT d.person_id, p.year_of_birth AS yob FROM omop.person AS p "
        "LEFT JOIN omop.death AS d ON d.person_id = p.person_id"
    )
    raw, _ = answer(db, cohort, NumericRequest(columns=("yob",)))
    (deaths, mean) = direct_one(
        db.admin_url,
        "SELECT count(*), avg(p.year_of_birth) FROM omop.death d JOIN omop.person p USING (person_id)",
    )
    assert raw["cohort_persons"] == deaths == raw["columns"]["yob"]["persons"]
    assert 0 < deaths < 2500
    assert rel_close(raw["columns"]["yob"]["mean"], float(mean), 1e-12)


def test_a_person_with_several_values_is_missing_for_that_column_only(trusts: list[OmopDb]) -> None:
    db = trusts[1]
    # BMI and systolic pressure rows: a person measured for both has two distinct values (missing for
    # "value"); their year of birth repeats on both rows but is one distinct value (kept for "yob")
    cohort = (
        "SELECT m.person_id, m.value_as_number AS value, p.year_of_birth AS yob "
        "FROM omop.measurement AS m JOIN omop.person AS p ON p.person_id = m.person_id "
        "WHERE m.measurement_concept_id IN (3038553, 3004249)"
    )
    raw, released = answer(
        db,
        cohort,
        NumericRequest(
            columns=("value", "yob"), histograms={"value": HistogramSpec(lower=0, upper=200, bins=4)}
        ),
    )
    persons, single, mean = direct_one(
        db.admin_url,
        "SELECT count(*), count(*) FILTER (WHERE lo = hi), avg(lo) FILTER (WHERE lo = hi) FROM ("
        "  SELECT person_id, min(value_as_number) AS lo, max(value_as_number) AS hi FROM omop.measurement"
        "  WHERE measurement_concept_id IN (3038553, 3004249) GROUP BY person_id) AS per_person",
    )
    assert raw["cohort_persons"] == persons
    assert 0 < single < persons  # some persons have both measurements, some one of them
    value = raw["columns"]["value"]
    assert value["persons"] == single and sum(value["histogram"]) == single
    assert rel_close(value["mean"], float(mean), 1e-12)
    assert raw["columns"]["yob"]["persons"] == persons
    # statuses come from the ordinary rules only: every person counts once, with one value or none
    assert released["yob"]["status"] == "released" and released["yob"]["n"] == persons
    assert released["value"]["status"] in ("released", "suppressed")


TARGET = "(SELECT min(q.person_id) FROM omop.person AS q)"


def test_one_person_with_a_second_value_is_exactly_one_missing_person(trusts: list[OmopDb]) -> None:
    """Whether one target person has a second value shows only as one more missing person.

    Every person, plus a second row for the target person: with the same value it changes nothing; with a
    different value the target counts as missing, which gives exactly the answer of a cohort where the
    target's value is null. No status of its own turns on that one person.
    """
    db = trusts[0]
    everyone = "SELECT p.person_id, p.year_of_birth AS yob FROM omop.person AS p"
    second = (
        everyone + " UNION ALL SELECT p.person_id, p.year_of_birth + {extra} AS yob FROM omop.person AS p "
        f"WHERE p.person_id = {TARGET}"
    )
    null_target = (
        "SELECT p.person_id, CASE WHEN p.person_id = "
        f"{TARGET} THEN NULL ELSE p.year_of_birth END AS yob FROM omop.person AS p"
    )
    alone, same, different, missing = (
        answer_unvalidated(db, cohort, ["yob"])
        for cohort in (everyone, second.format(extra=0), second.format(extra=1), null_target)
    )
    assert alone == same  # a repeated identical value is one value
    assert different == missing  # several values: missing, and nothing else tells them apart
    assert different[0]["columns"]["yob"]["persons"] == 1200 - 1
    # one missing person is a small missing group: the ordinary pair rule withholds the column
    assert alone[1]["yob"]["status"] == "released" and different[1]["yob"]["status"] == "suppressed"


def test_all_null_and_small_columns_are_suppressed_alike(trusts: list[OmopDb]) -> None:
    cohort = (
        "SELECT p.person_id, CAST(NULL AS NUMERIC) AS empty, "
        "CASE WHEN p.person_id <= 5 THEN p.year_of_birth END AS few, "
        "CASE WHEN p.person_id > 5 THEN p.year_of_birth END AS most "
        "FROM omop.person AS p"
    )
    # person_id <= 5 picks persons by id, which the cohort language refuses: the statement is tested as is
    raw, released = answer_unvalidated(trusts[2], cohort, ["empty", "few", "most"])
    assert raw["columns"]["empty"] == {"persons": 0, "mean": None, "m2": None}
    assert raw["columns"]["few"]["persons"] == 5
    # "most" misses exactly 5 persons, which total - n would reveal: withheld like the others
    assert released["empty"] == released["few"] == released["most"]
    assert released["empty"]["status"] == "suppressed"


def test_many_columns_are_chunked(trusts: list[OmopDb]) -> None:
    names = [f"c{i}" for i in range(60)]
    cohort = "SELECT p.person_id, " + ", ".join(f"p.year_of_birth + {i} AS {n}" for i, n in enumerate(names))
    cohort += " FROM omop.person AS p"
    grids = {name: HistogramSpec(lower=1900, upper=2030, bins=13) for name in names[::7]}
    raw, released = answer(trusts[2], cohort, NumericRequest(histograms=grids))
    assert list(released) and set(raw["columns"]) == set(names)
    base = raw["columns"]["c0"]["mean"]
    for i, name in enumerate(names):
        assert raw["columns"][name]["mean"] == pytest.approx(base + i, rel=1e-12)
        assert ("histogram" in raw["columns"][name]) == (name in grids)


# -- choosing and refusing columns ---------------------------------------------------------------------
def _resolve(db: OmopDb, sql: str, request: NumericRequest) -> list[str]:
    validated = validate(sql)
    executor = ReaderExecutor(db.reader_url)
    try:
        (types,) = executor.fetch_one(column_types_sql(validated.sql, validated.output_columns), LIMITS)
    finally:
        executor.close()
    return resolve_columns(request, validated.output_columns, types)


MIXED = (
    "SELECT p.person_id, p.gender_concept_id, p.year_of_birth AS yob, p.birth_datetime AS born, "
    "p.person_source_value AS source, CAST(p.month_of_birth AS NUMERIC) AS month FROM omop.person AS p"
)


def test_default_columns_are_numeric_and_not_ids(trusts: list[OmopDb]) -> None:
    assert _resolve(trusts[0], MIXED, NumericRequest()) == ["yob", "month"]
    # an id column may still be named explicitly, and a histogram column is always included
    assert _resolve(trusts[0], MIXED, NumericRequest(columns=("gender_concept_id",))) == ["gender_concept_id"]
    grid = HistogramSpec(lower=8000, upper=9000, bins=2)
    assert _resolve(trusts[0], MIXED, NumericRequest(histograms={"gender_concept_id": grid})) == [
        "gender_concept_id", "yob", "month",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (NumericRequest(columns=("weight",)), "unknown_column", "no output column 'weight'"),
        (NumericRequest(columns=("born",)), "not_numeric", "'born' is of type timestamp without time zone"),
        (NumericRequest(columns=("source",)), "not_numeric", "type character varying"),
        (
            NumericRequest(histograms={"source": HistogramSpec(lower=0, upper=1, bins=2)}),
            "not_numeric",
            "not numeric",
        ),
        (NumericRequest(columns=("person_id",)), "person_id_column", "person_id identifies persons"),
    ],
)
def test_bad_columns_are_rejected_with_a_reason(
    trusts: list[OmopDb], request_: NumericRequest, code: str, message: str
) -> None:
    with pytest.raises(NumericRejected, match=message) as exc:
        _resolve(trusts[0], MIXED, request_)
    assert exc.value.code == code and "\n" not in str(exc.value)


def test_no_numeric_columns_is_rejected(trusts: list[OmopDb]) -> None:
    sql = "SELECT p.person_id, p.visit_occurrence_id, p.visit_start_date FROM omop.visit_occurrence AS p"
    with pytest.raises(NumericRejected) as exc:
        _resolve(trusts[0], sql, NumericRequest())
    assert exc.value.code == "no_numeric_columns"


def test_type_discovery_never_runs_the_cohort(trusts: list[OmopDb]) -> None:
    # running this cohort divides by zero (the validator would have written NULLIF into it, so the
    # statement is used as is); discovering its types must not run it
    sql = "SELECT p.person_id, 1 / (p.year_of_birth - p.year_of_birth) AS boom FROM omop.person AS p"
    executor = ReaderExecutor(trusts[0].reader_url)
    try:
        (types,) = executor.fetch_one(column_types_sql(sql, ["person_id", "boom"]), LIMITS)
        assert resolve_columns(NumericRequest(), ["person_id", "boom"], types) == ["boom"]
        with pytest.raises(ExecutionFailed) as failed:
            executor.fetch_one(numeric_statistics_sql(sql, ["boom"], {}), LIMITS)
        assert (failed.value.cause, failed.value.sqlstate) == ("database_error", "22012")
    finally:
        executor.close()


def test_statement_builder_refuses_inconsistent_arguments() -> None:
    with pytest.raises(ValueError, match="at least one column"):
        numeric_statistics_sql("SELECT 1", [], {})
    with pytest.raises(ValueError, match="not summarised"):
        numeric_statistics_sql("SELECT 1", ["a"], {"b": HistogramSpec(lower=0, upper=1, bins=1)})


# -- the Flower example --------------------------------------------------------------------------------
def test_flower_example_validates_and_runs_as_reader(trusts: list[OmopDb]) -> None:
    validated = validate(FLOWER_SQL)
    assert validated.output_columns == ("person_id", *FEATURES)
    db = trusts[0]
    raw, released = answer(db, FLOWER_SQL, NumericRequest(columns=FEATURES, histograms={"bmi": GRIDS["bmi"]}))
    # one row per person: every person who has a value has exactly one (none is dropped as conflicting)
    (bmi_rows,) = direct_one(db.admin_url, f"SELECT count(bmi) FROM ({FLOWER_SQL}) AS c")
    assert raw["columns"]["bmi"]["persons"] == bmi_rows
    (with_bmi, with_any) = direct_one(
        db.admin_url,
        "SELECT count(DISTINCT person_id) FILTER (WHERE measurement_concept_id = 3038553), "
        "count(DISTINCT person_id) FROM omop.measurement "
        "WHERE measurement_concept_id IN (3038553, 3004249, 3012888, 3009966, 3004410) "
        "AND value_as_number IS NOT NULL",
    )
    assert raw["cohort_persons"] == with_any == raw["columns"]["age"]["persons"]
    assert released["bmi"]["n"] == with_bmi


def test_clamped_sums_for_dp_match_direct_sql_with_missing_and_out_of_bound_values(
    trusts: list[OmopDb],
) -> None:
    """dp mode's raw figures: persons with a value, sums of clamped values centred on the midpoint.

    Month of birth clamped to [3, 9] (values below and above the bounds), missing for some persons:
    a person without a value must not count as the lower bound (PostgreSQL's GREATEST ignores NULLs).
    """
    db = trusts[0]
    cohort = (
        "SELECT p.person_id, CASE WHEN p.day_of_birth % 3 = 0 THEN NULL "
        "ELSE CAST(p.month_of_birth AS NUMERIC) END AS month FROM omop.person AS p"
    )
    executor = ReaderExecutor(db.reader_url)
    try:
        (raw,) = executor.fetch_one(
            clamped_statistics_sql(
                cohort, ["month"], {"month": (3.0, 9.0)}, {"month": HistogramSpec(lower=0, upper=12, bins=4)}
            ),
            LIMITS,
        )
    finally:
        executor.close()
    (persons,) = direct_one(
        db.admin_url, "SELECT count(*) FROM omop.person WHERE day_of_birth % 3 <> 0 OR day_of_birth IS NULL"
    )
    _, total, squares = direct_one(
        db.admin_url,
        "SELECT count(m), sum(least(greatest(m, 3), 9) - 6), sum((least(greatest(m, 3), 9) - 6) ^ 2) "
        "FROM (SELECT CASE WHEN day_of_birth % 3 = 0 THEN NULL ELSE month_of_birth END AS m "
        "FROM omop.person) v WHERE m IS NOT NULL",
    )
    month = raw["columns"]["month"]
    assert raw["cohort_persons"] == 1200
    assert 0 < persons < 1200 and month["persons"] == persons
    assert rel_close(month["sum"], float(total), 1e-12) and rel_close(month["sumsq"], float(squares), 1e-12)
    assert sum(month["histogram"]) == persons  # bins count the (unclamped) values with a value
