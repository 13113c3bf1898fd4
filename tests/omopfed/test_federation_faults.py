"""Faults with real processes: a trust whose database is down, a trust whose worker is not running."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from omop.localservices.processes import stop_pid
from omopfed import stack as stack_mod
from omopfed.stack import StackState
from tests.omopfed.federation_helpers import submit_json

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    state = stack_mod.up(tmp_path_factory.mktemp("faults") / "stack", trusts=3, persons=150)
    try:
        yield state
    finally:
        stack_mod.down(state)


def test_database_down_is_an_error_at_that_trust_only(stack: StackState) -> None:
    stack.trusts["t2"].pg().stop(remove=False)
    code, report = submit_json(stack, "--sql", SQL, "--timeout", "20")
    assert code == 3 and report["status"] == "partial"
    assert report["trusts"]["t2"]["status"] == "error"
    assert "unavailable" in report["trusts"]["t2"]["detail"]
    assert {report["trusts"][t]["status"] for t in ("t1", "t3")} == {"released"}
    assert report["federated"]["person_count"] == 300


def test_stopped_worker_times_out_at_the_deadline(stack: StackState) -> None:
    worker = stack.trusts["t3"].worker_pid
    assert worker is not None
    stop_pid(worker, signal.SIGTERM)
    code, report = submit_json(stack, "--sql", SQL, "--trusts", "t1,t3", "--timeout", "3")
    assert code == 3 and report["status"] == "partial"
    assert report["trusts"]["t3"]["status"] == "timeout"
    assert report["trusts"]["t1"]["status"] == "released"
    assert report["federated"]["person_count"] == 150


def test_no_trust_answering_is_failed(stack: StackState) -> None:
    code, report = submit_json(stack, "--sql", SQL, "--trusts", "t3", "--timeout", "2")
    assert code == 4 and report["status"] == "failed"
    assert report["federated"]["person_count"] is None
