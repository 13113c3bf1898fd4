"""Recovery by itself: deadlines, late trusts, a reducer killed in the middle of an answer.

Before, a query stayed ``pending`` past its deadline until someone opened it, a trust whose worker came
back 45 s late ran and audited closed queries as ``released``, and a reducer killed mid-answer got that
answer back only after the visibility timeout, long after the query had ended ``partial``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from omop.protocol import new_query_id
from tests.omopfed.deployments import LocalDeployment, running
from tests.omopfed.federation_helpers import eventually

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"


# restarting one worker by hand is what this needs; compose would need a Docker engine for it
@pytest.fixture(scope="module", params=["local"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    # params=["local"]: running() starts a LocalDeployment
    yield from cast(
        Iterator[LocalDeployment], running(request, tmp_path_factory, "deadlines", persons=[120, 120])
    )


def test_a_query_past_its_deadline_is_closed_without_anyone_looking(deployment: LocalDeployment) -> None:
    qid = new_query_id()
    store = deployment.register_query(qid, ["t1"], timeout_s=1)  # recorded, never sent: no answer comes
    query = eventually(
        lambda: (q := store.get(qid)) is not None and q.status != "pending" and q,
        timeout=20,
        what="the reducer closing the query at its deadline",
    )
    assert query.status == "failed"
    assert [a.status for a in query.answers] == ["timeout"]


def test_a_trust_back_after_the_deadline_refuses_the_stale_task(deployment: LocalDeployment) -> None:
    deployment.stop_trust_worker("t2")
    code, report = deployment.submit_json("--sql", SQL, "--trusts", "t2", "--timeout", "1")
    assert code == 4 and report["trusts"]["t2"]["status"] == "timeout"
    qid = report["query_id"]
    time.sleep(1 + 5 + 1)  # past the deadline and the task's 5 s margin
    deployment.start_trust_worker("t2")
    entries = eventually(
        lambda: [e for e in deployment.audit_entries("t2") if e["query_id"] == qid] or None,
        timeout=30,
        what="t2's audit of the stale task",
    )
    decisions = [e["decision"] for e in entries]
    assert "released" not in decisions and decisions[0] == "refused"
    assert "expired" in entries[0]["detail"]
    code, report = deployment.submit_json("--sql", SQL, "--timeout", "60")
    assert code == 0 and {a["status"] for a in report["trusts"].values()} == {"released"}


def test_a_reducer_killed_mid_answer_handles_it_when_it_is_back(deployment: LocalDeployment) -> None:
    import threading

    import redis

    hub = redis.Redis.from_url(deployment.hub_redis_url)
    deployment.kill_reducer()
    done: list[tuple[int, dict[str, Any]]] = []
    thread = threading.Thread(
        target=lambda: done.append(deployment.submit_json("--sql", SQL, "--timeout", "60"))
    )
    thread.start()
    eventually(
        lambda: hub.llen("hub.results.t1") == 1 and hub.llen("hub.results.t2") == 1,
        timeout=30,
        what="both answers waiting for the reducer",
    )
    # what a reducer killed while handling t1's answer leaves behind
    assert hub.lmove("hub.results.t1", "hub.processing.t1", "LEFT", "RIGHT") is not None
    deployment.start_reducer()
    thread.join(timeout=90)
    code, report = done[0]
    assert code == 0 and {a["status"] for a in report["trusts"].values()} == {"released"}
    assert hub.llen("hub.processing.t1") == 0 and hub.llen("hub.results.t1") == 0


def test_the_reducer_proves_it_consumes_by_refreshing_its_ready_file(deployment: LocalDeployment) -> None:
    from pathlib import Path

    ready = Path(deployment.hub_env_file).parent / "hub" / "reducer.ready"
    first = ready.stat().st_mtime
    eventually(lambda: ready.stat().st_mtime > first, timeout=10, what="the ready file refreshed")


def test_a_full_broker_refuses_a_submission_and_the_workers_live_through_it(
    deployment: LocalDeployment,
) -> None:
    import os
    import threading
    from pathlib import Path

    import redis

    from trust_worker.liveness import HEARTBEAT_EVERY_S, RESEND_AFTER_S

    hub = redis.Redis.from_url(deployment.hub_redis_url)
    store = deployment.hub_store()
    before = len(store.recent(limit=1000))
    state = deployment.state
    logs = {t: Path(state.dir) / "logs" / f"trust-{t}.log" for t in deployment.trust_ids}
    log_sizes = {t: log.stat().st_size for t, log in logs.items()}
    pids = {t: state.trusts[t].worker_pid for t in deployment.trust_ids}
    filled: list[str] = []
    holding = threading.Event()
    holding.set()

    def fill() -> None:
        """Fill the broker to its limit with the hub's own user (noeviction: it then refuses writes).

        A refused big write frees its own buffer and the server trims idle clients' buffers now and
        then, which leaves room for small writes: so keep taking every byte that frees up, until told
        to stop, and the workers' heartbeats meet the broker's OOM reply.
        """
        for size in (4 * 2**20, 2**16, 2**10):
            while True:
                try:
                    hub.set(key := f"test-filler-{len(filled)}", b"x" * size)
                    filled.append(key)
                except redis.exceptions.OutOfMemoryError:
                    break
        ready_to_test.set()
        while holding.is_set():
            try:
                hub.set(key := f"test-filler-{len(filled)}", b"x" * 64)
                filled.append(key)
            except redis.exceptions.OutOfMemoryError:
                time.sleep(0.005)

    ready_to_test = threading.Event()
    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    try:
        assert ready_to_test.wait(120), "the broker never filled up"
        proc = deployment.submit("--sql", SQL, "--timeout", "10")
        assert proc.returncode == 1, proc.stderr
        assert "broker is full" in proc.stderr and "Traceback" not in proc.stderr
        assert len(store.recent(limit=1000)) == before  # nothing recorded
        time.sleep(2 * HEARTBEAT_EVERY_S + 1)  # each worker tries heartbeats: the broker's OOM reply
        for trust_id, log in logs.items():
            with log.open() as handle:
                handle.seek(log_sizes[trust_id])
                assert "used memory > 'maxmemory'" in handle.read(), f"{trust_id} never met the full broker"
            os.kill(pids[trust_id], 0)  # still running: a ProcessLookupError here fails the test
    finally:
        holding.clear()
        filler.join(timeout=10)
        for start in range(0, len(filled), 1000):
            hub.delete(*filled[start : start + 1000])
    released_at = time.monotonic()
    ready = Path(state.trusts["t1"].dir) / "worker.ready"
    seen = ready.stat().st_mtime
    # consuming again well within 15 s of the broker having room: a lost heartbeat is sent again
    eventually(
        lambda: ready.stat().st_mtime > seen,
        timeout=RESEND_AFTER_S + HEARTBEAT_EVERY_S,
        what="a heartbeat consumed after the broker had room again",
    )
    print(f"worker consuming again {time.monotonic() - released_at:.1f} s after the broker had room")
    code, report = deployment.submit_json("--sql", SQL, "--timeout", "60")
    assert code == 0 and {a["status"] for a in report["trusts"].values()} == {"released"}


def test_a_task_lost_in_transit_is_sent_again_and_answered_once(deployment: LocalDeployment) -> None:
    import threading

    import redis

    hub = redis.Redis.from_url(deployment.hub_redis_url)
    deployment.stop_trust_worker("t1")
    done: list[tuple[int, dict[str, Any]]] = []

    def submit() -> None:
        done.append(deployment.submit_json("--sql", SQL, "--trusts", "t1", "--timeout", "60"))

    thread = threading.Thread(target=submit)
    thread.start()
    # what a worker killed between taking the task off its queue and recording it in flight leaves:
    # the task is nowhere in the broker
    popped = eventually(lambda: hub.rpop("trust.t1"), timeout=30, what="the task on t1's queue")
    assert b"omopfed.cohort_task" in popped
    deployment.start_trust_worker("t1")
    thread.join(timeout=90)
    code, report = done[0]
    assert code == 0 and report["trusts"]["t1"]["status"] == "released"
    qid = report["query_id"]
    decisions = [e["decision"] for e in deployment.audit_entries("t1") if e["query_id"] == qid]
    assert decisions == ["released"]  # ran once
