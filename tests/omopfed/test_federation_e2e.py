"""End to end with real processes: embedded Valkey with ACL users, one PostgreSQL per trust, three trust
workers and the hub reducer as separate Celery worker processes (no eager mode), the real ``omopfed``
command for submission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub_broker.store import HubStore
from omop.concepts import GI_BLEED
from omop.transport import RESULTS_QUEUE
from omopfed import stack as stack_mod
from omopfed.stack import StackState
from tests.omopfed.federation_helpers import (
    audit_entries,
    eventually,
    no_traceback,
    omopfed,
    publish_raw,
    register_query,
    signed_task,
    submit_json,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

GI_SQL = (
    "SELECT co.person_id, co.condition_start_date FROM condition_occurrence co "
    f"WHERE co.condition_concept_id = {GI_BLEED}"
)
ALL_SQL = "SELECT person_id, year_of_birth FROM person"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    state = stack_mod.up(tmp_path_factory.mktemp("e2e") / "stack", trusts=3, persons=[400, 300, 200])
    try:
        yield state
    finally:
        stack_mod.down(state)


def direct_person_count(stack: StackState, trust_id: str, sql: str) -> int:
    with psycopg.connect(stack.trusts[trust_id].db_url) as conn:
        conn.execute("SET search_path = omop")
        row = conn.execute(f"SELECT count(DISTINCT person_id) FROM ({sql}) c").fetchone()
    return int(row[0])


def test_three_trusts_answer_and_pooled_counts_equal_direct_sql(stack: StackState) -> None:
    for sql in (ALL_SQL, GI_SQL):
        code, report = submit_json(stack, "--sql", sql)
        assert code == 0, report
        assert report["status"] == "complete"
        assert set(report["trusts"]) == {"t1", "t2", "t3"}
        direct = {t: direct_person_count(stack, t, sql) for t in stack.trusts}
        released = {t: e["person_count"] for t, e in report["trusts"].items() if e["status"] == "released"}
        assert released == {t: n for t, n in direct.items() if n >= 10}
        assert report["federated"]["person_count"] == sum(released.values())
        assert sum(report["federated"]["sex"].values()) == report["federated"]["person_count"]
        assert sum(report["federated"]["age"].values()) == report["federated"]["person_count"]
        assert report["threshold"] == 10 and isinstance(report["query_id"], str)


def test_result_and_status_read_the_store(stack: StackState) -> None:
    code, report = submit_json(stack, "--sql", ALL_SQL, "--trusts", "t1,t2")
    assert code == 0 and set(report["trusts"]) == {"t1", "t2"}
    env = str(Path(stack.dir) / "stack.env")
    again = omopfed("hub", "result", report["query_id"], "--json", "--env-file", env)
    assert again.returncode == 0 and json.loads(again.stdout)["federated"] == report["federated"]
    status = omopfed("hub", "status", report["query_id"], "--json", "--env-file", env)
    assert json.loads(status.stdout)["status"] == "complete"
    missing = omopfed("hub", "result", "nosuchquery", "--env-file", env)
    no_traceback(missing)
    assert missing.returncode == 2 and "unknown query id" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sql", "DELETE FROM person"], "rejected at the hub"),
        (["--sql", "SELECT year_of_birth FROM person"], "person_id"),
        (["--sql", ALL_SQL, "--trusts", "t1,nosuch"], "unknown trust"),
        (["--sql", ALL_SQL, "--trusts", ","], "empty"),
        (["--sql", ALL_SQL, "--trusts", "Bad Id"], "invalid trust id"),
        (["--sql-file", "/nonexistent/q.sql"], "cannot read"),
        ([], "exactly one of"),
        (["--sql", ALL_SQL, "--timeout", "-1"], "timeout"),
    ],
)
def test_bad_submissions_exit_2_with_one_line(stack: StackState, args: list[str], message: str) -> None:
    proc = omopfed("hub", "submit", "--env-file", str(Path(stack.dir) / "stack.env"), *args)
    no_traceback(proc)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""


def test_broker_unreachable_is_a_clear_error(stack: StackState, tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    lines = Path(stack.dir, "stack.env").read_text().splitlines()
    lines = [ln for ln in lines if not ln.startswith("OMOPFED_BROKER_URL")]
    env_file.write_text("\n".join([*lines, 'OMOPFED_BROKER_URL="redis://hub:x@127.0.0.1:1/0"']) + "\n")
    proc = omopfed("hub", "submit", "--env-file", str(env_file), "--sql", ALL_SQL, timeout=60)
    no_traceback(proc)
    assert proc.returncode == 1
    assert "cannot reach the broker" in proc.stderr


def test_forged_task_is_refused_and_audited(stack: StackState) -> None:
    qid, wire = signed_task(stack, "t1", ALL_SQL, key=Ed25519PrivateKey.generate())
    store = register_query(stack, qid, ["t1"], timeout_s=3)
    publish_raw(stack, "t1", wire)
    entry = eventually(
        lambda: [
            e
            for e in audit_entries(stack, "t1")
            if e["decision"] == "refused" and "wrong_key" in (e["detail"] or "")
        ],
        what="audit of the forged task",
    )
    assert entry
    from hub_broker.finalize import finalize_if_due

    query = eventually(lambda: (q := finalize_if_due(store, qid)) and q.status != "pending" and q, timeout=15)
    assert (query.status, query.answers[0].status, query.answers[0].result) == ("failed", "timeout", None)


def test_expired_task_is_answered_rejected(stack: StackState) -> None:
    from datetime import UTC, datetime, timedelta

    qid, wire = signed_task(
        stack, "t2", ALL_SQL, issued=datetime.now(UTC) - timedelta(minutes=10), lifetime=timedelta(minutes=1)
    )
    store = register_query(stack, qid, ["t2"])
    publish_raw(stack, "t2", wire)
    answer = eventually(lambda: (a := store.get(qid).answers[0]).status != "pending" and a, what="answer")
    assert answer.status == "rejected" and answer.result["reason_code"] == "expired"


def test_replayed_task_runs_once_and_is_stored_once(stack: StackState) -> None:
    qid, wire = signed_task(stack, "t3", ALL_SQL)
    store = register_query(stack, qid, ["t3"])
    publish_raw(stack, "t3", wire)
    publish_raw(stack, "t3", wire)
    eventually(lambda: store.get(qid).answers[0].deliveries == 2, what="both deliveries at the hub")
    decisions = [e["decision"] for e in audit_entries(stack, "t3") if e["query_id"] == qid]
    assert decisions == ["released", "resent"]
    assert store.get(qid).answers[0].status == "released"


def test_tampered_unknown_and_misaddressed_results_are_refused(stack: StackState) -> None:
    # a genuine answer from t1 to a query addressed only to t2: mis-addressed at the hub
    qid, wire = signed_task(stack, "t1", ALL_SQL)
    register_query(stack, qid, ["t2"], timeout_s=2)
    store = HubStore(stack.hub_store_url or "")
    before = len(store.refused())
    publish_raw(stack, "t1", wire)
    eventually(
        lambda: any(r.code == "unknown_query" and r.query_id == qid for r in store.refused()),
        what="mis-addressed result refused",
    )
    # garbage and a tampered envelope pushed straight onto hub.results by someone with broker access
    hub = redis.Redis.from_url(stack.hub_redis_url or "")
    from hub_broker.celery_app import hub_app
    from tests.omopfed.federation_helpers import hub_settings

    app = hub_app(hub_settings(stack))
    from omop.transport import RESULT_TASK_NAME, results_queue

    app.send_task(RESULT_TASK_NAME, args=[{"not": "an envelope"}], queue=results_queue())
    app.send_task(RESULT_TASK_NAME, args=["x" * 10], queue=results_queue())
    # a real sealed answer from t1's ledger with one ciphertext byte flipped
    import base64
    import sqlite3

    ledger = sqlite3.connect(Path(stack.trusts["t1"].dir) / "state" / "executed.sqlite")
    (sealed,) = ledger.execute("SELECT envelope FROM executed WHERE envelope IS NOT NULL LIMIT 1").fetchone()
    ledger.close()
    wire = json.loads(sealed)
    raw = bytearray(base64.b64decode(wire["ciphertext"]))
    raw[0] ^= 1
    wire["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    app.send_task(RESULT_TASK_NAME, args=[wire], queue=results_queue())
    eventually(lambda: len(store.refused()) >= before + 4, what="refusals counted")
    codes = [r.code for r in store.refused()[before:]]
    assert codes.count("malformed") == 2 and "bad_signature" in codes
    assert hub.llen(RESULTS_QUEUE) == 0
    # the reducer is still alive and serving
    code, report = submit_json(stack, "--sql", ALL_SQL, "--trusts", "t1")
    assert code == 0 and report["trusts"]["t1"]["status"] == "released"
