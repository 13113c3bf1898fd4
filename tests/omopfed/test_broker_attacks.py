"""One trust cannot hurt the federation: attacks run with trust t1's own broker credentials.

What a compromised hospital server has is its worker's broker user. Every attack below was once possible
(a reducer killed by a wrong key type or a garbage message, Celery's built-in tasks run by the reducer,
another trust's answers deleted, the broker paused or flooded with a Lua busy loop). Each must now be
refused by the ACL or survived by the reducer, and a normal query must complete at every trust after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest
import redis

from tests.broker_checks import refused_by_broker
from tests.omopfed.deployments import LocalDeployment, running
from tests.omopfed.federation_helpers import eventually

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"


# compose runs the same product and ACL; restarting one of its workers by hand needs a Docker engine
@pytest.fixture(scope="module", params=["local"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    # params=["local"]: running() starts a LocalDeployment
    yield from cast(
        Iterator[LocalDeployment], running(request, tmp_path_factory, "attacks", persons=[150, 150, 150])
    )


def _everyone_answers(deployment: LocalDeployment) -> None:
    code, report = deployment.submit_json("--sql", SQL, "--timeout", "60")
    assert code == 0, report
    assert {t: a["status"] for t, a in report["trusts"].items()} == {
        "t1": "released",
        "t2": "released",
        "t3": "released",
    }


def test_broker_commands_that_hurt_others_are_refused(deployment: LocalDeployment) -> None:
    t1 = redis.Redis.from_url(deployment.trust_broker_url("t1"), socket_timeout=20)
    hub = redis.Redis.from_url(deployment.hub_redis_url)
    attacks = {
        "turn its results key into a string": lambda: t1.set("hub.results.t1", "x"),
        "delete t2's answers": lambda: t1.delete("hub.results.t2"),
        "push into t2's results": lambda: t1.rpush("hub.results.t2", "forged"),
        "push into t2's queue": lambda: t1.lpush("trust.t2", "task"),
        "pause every client": lambda: t1.execute_command("CLIENT", "PAUSE", "8000", "ALL"),
        "disconnect the hub": lambda: t1.execute_command("CLIENT", "KILL", "USER", "hub"),
        "list every client": lambda: t1.client_list(),
        "stream other keys' changes": lambda: t1.execute_command("CLIENT", "TRACKING", "ON", "BCAST"),
        "Lua busy loop": lambda: t1.eval("while true do end", 0),
        "load a script": lambda: t1.script_load("while true do end"),
        "watch every command": lambda: t1.execute_command("MONITOR"),
        "read the configuration": lambda: t1.config_get("*"),
        "change the memory limit": lambda: t1.config_set("maxmemory", "1"),
        "sleep the server": lambda: t1.execute_command("DEBUG", "SLEEP", "5"),
        "flush everything": lambda: t1.flushall(),
    }
    allowed = [name for name, attack in attacks.items() if not refused_by_broker(attack)]
    assert allowed == []
    assert hub.type("hub.results.t1") in (b"list", b"none")
    _everyone_answers(deployment)


def test_the_reducer_survives_anything_a_trust_pushes(deployment: LocalDeployment) -> None:
    t1 = redis.Redis.from_url(deployment.trust_broker_url("t1"))
    store = deployment.hub_store()
    before = len(store.refused())
    # a Celery built-in task that once made the reducer publish 20 messages into t2's queue
    group: dict[str, Any] = {
        "body": "W1tdLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsfV0=",
        "headers": {"task": "celery.group", "id": "x", "lang": "py", "argsrepr": "()", "kwargsrepr": "{}"},
        "properties": {"delivery_tag": "t", "body_encoding": "base64", "delivery_info": {}},
        "content-type": "application/json",
        "content-encoding": "utf-8",
    }
    chord_unlock = dict(group, headers={**group["headers"], "task": "celery.chord_unlock"})
    garbage: list[bytes | str] = [
        "hello",
        json.dumps(group),
        json.dumps(chord_unlock),
        "{" * 100_000,  # deeply nested: must not blow the parser's stack
        b"\xff\xfe not utf-8",
        "x" * (300 * 1024),  # larger than any answer: refused unread
    ]
    for message in garbage:
        t1.rpush("hub.results.t1", message)
    # a genuine sealed answer of t1's, relabelled as t2's: refused as not the key owner's
    sealed = _a_sealed_answer(deployment, "t1")
    t1.rpush("hub.results.t1", json.dumps(dict(sealed, trust_id="t2")))
    # and a flood
    t1.rpush("hub.results.t1", *(f"flood {i}" for i in range(500)))
    expected = len(garbage) + 1 + 500
    eventually(lambda: len(store.refused()) >= before + expected, timeout=60, what="every message refused")
    codes = [r.code for r in store.refused()[before:]]
    assert set(codes) == {"malformed", "too_large", "wrong_owner"}
    assert all(r.trust_id == "t1" for r in store.refused()[before:])
    hub = redis.Redis.from_url(deployment.hub_redis_url)
    assert hub.llen("trust.t2") == 0  # nothing was published on t1's behalf
    _everyone_answers(deployment)
    # operators see it per trust
    from tests.cli_runner import run_omopfed

    proc = run_omopfed("hub", "queues", "--json", "--env-file", str(deployment.hub_env_file))
    depths = json.loads(proc.stdout)
    assert depths["trust.t1"]["refused"] >= expected
    assert depths["trust.t1"]["last_refusal"].startswith("malformed")
    assert depths["trust.t2"]["refused"] == 0


def _a_sealed_answer(deployment: LocalDeployment, trust_id: str) -> dict[str, Any]:
    import sqlite3

    _everyone_answers(deployment)  # makes sure the ledger holds one
    ledger = sqlite3.connect(deployment.ledger_path(trust_id))
    try:
        (sealed,) = ledger.execute(
            "SELECT envelope FROM executed WHERE envelope IS NOT NULL LIMIT 1"
        ).fetchone()
    finally:
        ledger.close()
    wire: dict[str, Any] = json.loads(sealed)
    return wire


def _running_in_ledger(deployment: LocalDeployment, trust_id: str) -> int:
    """Queries the trust's ledger records as started and not finished."""
    import sqlite3

    ledger = sqlite3.connect(deployment.ledger_path(trust_id))
    try:
        (count,) = ledger.execute("SELECT count(*) FROM executed WHERE finished_at IS NULL").fetchone()
    finally:
        ledger.close()
    return int(count)


def test_a_worker_killed_mid_task_comes_back_and_answers_it(deployment: LocalDeployment) -> None:
    hub = redis.Redis.from_url(deployment.hub_redis_url)
    proc_code: list[Any] = []
    import threading

    def submit() -> None:
        proc_code.append(deployment.submit_json("--sql", SQL, "--trusts", "t1", "--timeout", "120"))

    # the synthetic data is too small for any query to run long: a lock held by the test keeps the
    # worker's query running (waiting on the table) until the worker is killed
    admin = psycopg.connect(deployment.trust_admin_url("t1"))
    try:
        admin.execute("LOCK TABLE omop.person IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=submit)
        thread.start()
        eventually(lambda: hub.hlen("unacked.trust.t1") == 1, timeout=60, what="t1 took the task")
        eventually(lambda: _running_in_ledger(deployment, "t1") == 1, timeout=60, what="t1 running the query")
        deployment.kill_trust_worker("t1")
    finally:
        admin.rollback()
        admin.close()
    deployment.start_trust_worker("t1")  # what its supervisor does; nothing else
    thread.join(timeout=150)
    assert proc_code, "the submission did not finish"
    _, report = proc_code[0]
    answer = report["trusts"]["t1"]
    # the ledger saw the query start before the crash: answered as interrupted, never run twice
    assert (answer["status"], answer["reason_code"]) == ("error", "interrupted"), report
    assert hub.hlen("unacked.trust.t1") == 0
    _everyone_answers(deployment)
