"""Federated numeric statistics through the whole federation (the Flower job, done safely and exactly)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from omopfed import stack as stack_mod
from omopfed.stack import StackState
from tests.cli_runner import assert_no_traceback, hub_submit_json, run_omopfed

pytestmark = [pytest.mark.services, pytest.mark.slow]

FLOWER_SQL = (Path(__file__).parents[2] / "omopfed" / "examples" / "flower-six-features.sql").read_text()
FEATURES = ["age", "bmi", "systolic_bp", "diastolic_bp", "ldl_cholesterol", "hba1c"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    state = stack_mod.up(
        tmp_path_factory.mktemp("numeric") / "stack", trusts=3, persons=[700, 500, 300], privacy="exact"
    )
    try:
        yield state
    finally:
        stack_mod.down(state)


def union_values(stack: StackState, column: str) -> list[float]:
    values: list[float] = []
    for node in stack.trusts.values():
        with psycopg.connect(node.db_url) as conn:
            rows = conn.execute(
                f"SELECT {column} FROM ({FLOWER_SQL}) q WHERE {column} IS NOT NULL"
            ).fetchall()
        values += [float(r[0]) for r in rows]
    return values


def test_pooled_mean_and_sd_equal_direct_sql_over_the_union(stack: StackState) -> None:
    code, report = hub_submit_json(
        Path(stack.dir) / "stack.env",
        "--sql",
        FLOWER_SQL,
        "--numeric",
        ",".join(FEATURES),
        "--histogram",
        "bmi=15:45:10",
    )
    assert code == 0, report
    numeric = report["federated"]["numeric"]
    assert set(numeric) == set(FEATURES)
    for column in FEATURES:
        values = union_values(stack, column)
        pooled = numeric[column]
        assert pooled["status"] == "released"
        assert pooled["n"] == len(values)
        assert math.isclose(pooled["mean"], math.fsum(values) / len(values), rel_tol=1e-9)
        assert math.isclose(pooled["sd"], statistics.stdev(values), rel_tol=1e-9)
        assert "min" not in pooled and "max" not in pooled
    hist = numeric["bmi"]["histogram"]
    assert sum(cell["count"] for cell in hist) == numeric["bmi"]["n"]
    assert all(cell["count"] == 0 or cell["count"] >= 10 for cell in hist)
    assert hist[0]["lower"] is None and hist[-1]["upper"] is None
    q = numeric["bmi"]["quantiles"]
    assert q["q1"] <= q["median"] <= q["q3"]
    assert abs(q["median"] - statistics.median(union_values(stack, "bmi"))) < 3.0  # one bin is 3 units wide
    for trust in report["trusts"].values():
        assert trust["status"] == "released"
        assert all("min" not in c and "max" not in c for c in trust["numeric"].values())


def test_non_numeric_column_is_a_per_trust_rejection(stack: StackState) -> None:
    sql = "SELECT person_id, person_source_value, year_of_birth FROM person"
    code, report = hub_submit_json(
        Path(stack.dir) / "stack.env", "--sql", sql, "--numeric", "person_source_value"
    )
    assert code == 4 and report["status"] == "failed"
    assert {t["status"] for t in report["trusts"].values()} == {"rejected"}
    assert {t["reason_code"] for t in report["trusts"].values()} == {"not_numeric"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--numeric", "nosuch"], "no output column"),
        (["--numeric", "person_id"], "person_id"),
        (["--histogram", "bmi=45:15:10"], "lower"),
        (["--histogram", "bmi=15:45:0"], "bin count"),
        (["--histogram", "bmi=15:45:1000000"], "bin count"),
        (["--histogram", "bmi"], "COLUMN=LOWER:UPPER:BINS"),
        (["--numeric", "bmi", "--all-numeric"], "not both"),
    ],
)
def test_bad_numeric_requests_are_usage_errors(stack: StackState, args: list[str], message: str) -> None:
    proc = run_omopfed(
        "hub", "submit", "--env-file", str(Path(stack.dir) / "stack.env"), "--sql", FLOWER_SQL, *args
    )
    assert_no_traceback(proc)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_all_null_column_is_suppressed_not_an_error(stack: StackState) -> None:
    sql = "SELECT person_id, CAST(NULL AS numeric) AS nothing FROM person"
    code, report = hub_submit_json(Path(stack.dir) / "stack.env", "--sql", sql, "--all-numeric")
    assert code == 0
    assert report["federated"]["numeric"]["nothing"]["status"] == "suppressed"
    assert report["federated"]["numeric"]["nothing"]["mean"] is None
