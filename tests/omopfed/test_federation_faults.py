"""Faults with real processes, against every deployment: a trust whose database is down, a trust whose
worker is not running, and no trust answering at all."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from omop.protocol import EXECUTION_FAILED_DETAIL
from tests.cli_runner import run_omopfed
from tests.omopfed.deployments import KINDS, Deployment, running

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"


@pytest.fixture(scope="module", params=KINDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    yield from running(request, tmp_path_factory, "faults", persons=[150, 150, 150])


def test_database_down_is_an_error_at_that_trust_only(deployment: Deployment) -> None:
    deployment.stop_trust_database("t2")
    code, report = deployment.submit_json("--sql", SQL, "--timeout", "20")
    assert code == 3 and report["status"] == "partial"
    assert report["trusts"]["t2"]["status"] == "error"
    # the same wording as every other failure: the cause (database down) is in the trust's audit log
    assert report["trusts"]["t2"]["detail"] == EXECUTION_FAILED_DETAIL
    assert {report["trusts"][t]["status"] for t in ("t1", "t3")} == {"released"}
    assert report["federated"]["person_count"] == 300


def test_stopped_worker_times_out_at_the_deadline(deployment: Deployment) -> None:
    deployment.stop_trust_worker("t3")
    code, report = deployment.submit_json("--sql", SQL, "--trusts", "t1,t3", "--timeout", "3")
    assert code == 3 and report["status"] == "partial"
    assert report["trusts"]["t3"]["status"] == "timeout"
    assert report["trusts"]["t1"]["status"] == "released"
    assert report["federated"]["person_count"] == 150
    # the task for t3 is kept in its queue, visible to the hub operator, until a worker comes back
    proc = run_omopfed("hub", "queues", "--json", "--env-file", str(deployment.hub_env_file))
    assert json.loads(proc.stdout)["trust.t3"]["waiting"] >= 1


def test_no_trust_answering_is_failed(deployment: Deployment) -> None:
    code, report = deployment.submit_json("--sql", SQL, "--trusts", "t3", "--timeout", "2")
    assert code == 4 and report["status"] == "failed"
    assert report["federated"]["person_count"] is None
