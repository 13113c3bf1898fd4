"""Faults an operator causes, with real processes: each ends with every answer counted.

``omopfed stack stop|start --service`` stops (or freezes) and starts one process of a local federation,
as an operator would. A stream of queries is in flight when the fault happens; afterwards every query must
be final with the figure a direct count gives (nothing lost, nothing counted twice), and a query sent after
the fault must be answered by every trust. The recovery time of each fault is printed (``-s``) for the
notes; it is not asserted (speed belongs in ``make bench``), but every query has a deadline it must meet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hub_broker.submit import submit, wait_for
from tests.cli_runner import run_omopfed
from tests.omopfed.deployments import Deployment, running

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"
PERSONS = [80, 60]
STREAM = 20


@pytest.fixture(scope="module", params=["local"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    yield from running(request, tmp_path_factory, "stack-faults", persons=PERSONS)


def _stack(deployment: Deployment, *args: str) -> None:
    proc = run_omopfed("stack", *args, "--dir", str(deployment.state.dir), timeout=120)  # type: ignore[attr-defined]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def _send_stream(deployment: Deployment, n: int = STREAM) -> list[str]:
    settings, store = deployment.hub_settings(), deployment.hub_store()
    return [submit(settings, store, sql=SQL, timeout_s=90).query_id for _ in range(n)]


def _all_counted(deployment: Deployment, query_ids: list[str]) -> dict[str, int]:
    """Wait for every query; each must have every trust's answer stored once and the exact pooled count."""
    store = deployment.hub_store()
    counts = {"queries": len(query_ids), "answers": 0, "lost": 0, "deliveries_beyond_first": 0}
    for query_id in query_ids:
        query = wait_for(store, query_id, poll_s=0.1)
        for answer in query.answers:
            if answer.status == "released":
                counts["answers"] += 1
            else:
                counts["lost"] += 1
            counts["deliveries_beyond_first"] += max(0, answer.deliveries - 1)
        if query.status == "complete":
            assert (query.pooled or {}).get("person_count") == sum(PERSONS), query_id  # never counted twice
    return counts


def _recovered_after(deployment: Deployment, fault_ended: float) -> float:
    code, report = deployment.submit_json("--sql", SQL, "--timeout", "60")
    assert code == 0 and {a["status"] for a in report["trusts"].values()} == {"released"}, report
    return time.monotonic() - fault_ended


@pytest.mark.parametrize(("signal_name", "down_s"), [("TERM", 3), ("KILL", 3), ("TERM", 20), ("KILL", 20)])
def test_broker_restart_during_a_stream(deployment: Deployment, signal_name: str, down_s: int) -> None:
    # no pause before a SIGKILL: the broker's AOF is written once a second, so what it took in the last
    # second can vanish; the hub then finds those tasks (or their answers) nowhere and sends them again
    ids = _send_stream(deployment)
    _stack(deployment, "stop", "--service", "broker", "--signal", signal_name)
    time.sleep(down_s)
    _stack(deployment, "start", "--service", "broker")
    ended = time.monotonic()
    counts = _all_counted(deployment, ids)
    recovery = _recovered_after(deployment, ended)
    print(f"broker {signal_name} {down_s} s: {counts}, consuming again {recovery:.1f} s after the restart")
    assert counts["lost"] == 0


def test_worker_killed_during_a_stream(deployment: Deployment) -> None:
    ids = _send_stream(deployment)
    _stack(deployment, "stop", "--service", "worker-t1", "--signal", "KILL")
    _stack(deployment, "start", "--service", "worker-t1")
    ended = time.monotonic()
    store = deployment.hub_store()
    interrupted = 0
    for query_id in ids:
        query = wait_for(store, query_id, poll_s=0.1)
        statuses = {a.trust_id: (a.status, (a.result or {}).get("reason_code")) for a in query.answers}
        assert statuses["t2"] == ("released", None)
        assert statuses["t1"] in (("released", None), ("error", "interrupted")), statuses  # never lost
        interrupted += statuses["t1"] == ("error", "interrupted")
    recovery = _recovered_after(deployment, ended)
    print(f"worker SIGKILL: {len(ids)} queries, {interrupted} interrupted, consuming again {recovery:.1f} s")


def test_reducer_killed_during_a_stream(deployment: Deployment) -> None:
    ids = _send_stream(deployment)
    _stack(deployment, "stop", "--service", "reducer", "--signal", "KILL")
    time.sleep(2)
    _stack(deployment, "start", "--service", "reducer")
    ended = time.monotonic()
    counts = _all_counted(deployment, ids)
    recovery = _recovered_after(deployment, ended)
    print(f"reducer SIGKILL: {counts}, consuming again {recovery:.1f} s after the restart")
    assert counts["lost"] == 0


def test_a_frozen_trust_database_costs_a_bounded_wait(deployment: Deployment) -> None:
    _stack(deployment, "stop", "--service", "db-t2", "--signal", "STOP")
    started = time.monotonic()
    try:
        code, report = deployment.submit_json("--sql", SQL, "--timeout", "90")
        waited = time.monotonic() - started
        time.sleep(max(0.0, 60 - (time.monotonic() - started)))  # frozen for a minute in all
    finally:
        _stack(deployment, "start", "--service", "db-t2")
    assert report["trusts"]["t1"]["status"] == "released"
    assert report["trusts"]["t2"]["status"] == "error", report  # the generic error, not a hang
    assert code == 3
    recovery = _recovered_after(deployment, time.monotonic())
    print(
        f"frozen database 60 s: answered after {waited:.1f} s; consuming again {recovery:.1f} s after thawing"
    )


def test_bad_service_names_and_signals_are_one_line_errors(deployment: Deployment) -> None:
    for args, message in (
        (["stop", "--service", "worker-t9"], "no service 'worker-t9'"),
        (["stop", "--service", "broker", "--signal", "HUP"], "--signal must be one of"),
    ):
        proc = run_omopfed("stack", *args, "--dir", str(deployment.state.dir))  # type: ignore[attr-defined]
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
