"""The whole trust pipeline, pure decisions first, then against real PostgreSQL as the reader role."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omop.differential_privacy import PrivacyMode
from omop.disclosure import SUPPRESSED_DETAIL
from tests.conftest import OmopDb
from trust_worker.executor import ReaderExecutor
from trust_worker.pipeline import answer_cohort, release_figures
from trust_worker.policy_file import PrivacyPolicy, TrustPolicy

FLIP_EXAMPLE = (Path(__file__).parents[2] / "omopfed" / "examples" / "ct-spleen.sql").read_text()


def figures(person_count: int, row_count: int, t: int = 10) -> dict[str, object]:
    return release_figures(
        person_count=person_count,
        row_count=row_count,
        columns={"person_id": [row_count, 0]},
        sex={"Male": person_count},
        age={"Unknown": person_count},
        threshold=t,
    )


def test_zero_and_threshold_minus_one_are_indistinguishable() -> None:
    assert figures(0, 0) == figures(9, 9) == {"status": "suppressed", "detail": SUPPRESSED_DETAIL}
    assert figures(10, 10)["status"] == "released"


def test_row_figures_withheld_when_extra_rows_are_a_small_number() -> None:
    small = figures(40, 43)
    assert (small["row_count"], small["columns"]) == (None, None)
    assert small["person_count"] == 40
    for rows in (40, 50, 400):
        assert figures(40, rows)["row_count"] == rows


@given(
    st.integers(10, 5000),
    st.integers(0, 5000),
    st.dictionaries(st.sampled_from(["Male", "Female", "Unknown"]), st.integers(0, 300)),
    st.integers(10, 25),
)
def test_every_released_cell_is_zero_or_at_least_t(
    persons: int, extra: int, sex: dict[str, int], t: int
) -> None:
    total = sum(sex.values())
    out = release_figures(
        person_count=persons,
        row_count=persons + extra,
        columns={"c": [persons + extra - 3, 3]},
        sex=sex,
        age={"0-9": total},
        threshold=t,
    )
    if persons < t:
        assert out["status"] == "suppressed"
        return
    for table in ("sex", "age"):
        assert all(v == 0 or v >= t for v in out[table].values())
    if out["row_count"] is not None:
        assert out["row_count"] - persons == 0 or out["row_count"] - persons >= t
        pair = out["columns"]["c"]
        assert (pair.non_null, pair.null) == (None, None)  # the 3 nulls are small: withheld as a pair


pytestmark_services = pytest.mark.services


@pytestmark_services
def test_flip_worked_example_is_six_persons_and_therefore_suppressed(fixture_db: OmopDb) -> None:
    executor = ReaderExecutor(fixture_db.reader_url)
    answer = answer_cohort(
        FLIP_EXAMPLE,
        query_id="q",
        trust_id="t",
        project_id=None,
        # in dp mode 6 + noise may reach 10 now and then
        policy=TrustPolicy(privacy=PrivacyPolicy(mode=PrivacyMode.EXACT)),
        executor=executor,
    )
    assert (answer.result.status, answer.result.detail, answer.result.person_count) == (
        "suppressed",
        SUPPRESSED_DETAIL,
        None,
    )
    with psycopg.connect(fixture_db.admin_url) as conn:
        rows = conn.execute(f"SELECT count(*), count(DISTINCT person_id) FROM ({FLIP_EXAMPLE}) q").fetchone()
    assert rows == (6, 6)
    executor.close()


@pytestmark_services
@pytest.mark.parametrize(
    ("sql", "policy", "status", "code"),
    [
        ("DELETE FROM person", TrustPolicy(), "rejected", "data_modifying"),
        ("SELECT year_of_birth FROM person", TrustPolicy(), "rejected", "no_person_id"),
        ("SELECT person_id FROM pg_authid", TrustPolicy(), "rejected", "system_catalog"),
        (
            "SELECT person_id FROM person",
            TrustPolicy(allowed_projects=("other",)),
            "rejected",
            "project_not_allowed",
        ),
        (
            "SELECT person_id FROM person",
            TrustPolicy(privacy=PrivacyPolicy(mode=PrivacyMode.EXACT)),
            "released",
            None,
        ),
    ],
)
def test_pipeline_outcomes(
    fixture_db: OmopDb, sql: str, policy: TrustPolicy, status: str, code: str | None
) -> None:
    executor = ReaderExecutor(fixture_db.reader_url)
    answer = answer_cohort(sql, query_id="q", trust_id="t", project_id="p", policy=policy, executor=executor)
    executor.close()
    assert (answer.result.status, answer.result.reason_code) == (status, code)
    assert answer.result.privacy is not None and answer.result.privacy.mode == policy.privacy.mode
    if status == "released":
        assert answer.result.person_count == 16
        assert answer.executed_sql is not None and "omop.person" in answer.executed_sql
    # how long it took is for the audit log only (failures: tests/trust_worker/test_execution_privacy.py)
    assert "elapsed_ms" not in answer.result.model_dump() and answer.execution["elapsed_ms"] >= 0
