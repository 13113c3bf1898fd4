"""End to end with real processes, against every deployment in ``tests/omopfed/deployments.py``: the local
stack (embedded Valkey with ACL users, one PostgreSQL per trust, three trust workers and the hub reducer as
separate Celery worker processes, no eager mode) and, when Docker is available, the generated compose
deployment. The real ``omopfed`` command submits; the assertions are the same for both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub_broker.store import HubStore, Query
from tests.cli_runner import assert_no_traceback, run_omopfed
from tests.omopfed.deployments import KINDS, Deployment, running
from tests.omopfed.federation_helpers import eventually
from trust_worker.concepts import GI_BLEED

pytestmark = [pytest.mark.services, pytest.mark.slow]

GI_SQL = (
    "SELECT co.person_id, co.condition_start_date FROM condition_occurrence co "
    f"WHERE co.condition_concept_id = {GI_BLEED}"
)
ALL_SQL = "SELECT person_id, year_of_birth FROM person"


@pytest.fixture(scope="module", params=KINDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    yield from running(request, tmp_path_factory, "e2e", persons=[400, 300, 200])


def test_three_trusts_answer_and_pooled_counts_equal_direct_sql(deployment: Deployment) -> None:
    for sql in (ALL_SQL, GI_SQL):
        code, report = deployment.submit_json("--sql", sql)
        assert code == 0, report
        assert report["status"] == "complete"
        assert set(report["trusts"]) == {"t1", "t2", "t3"}
        direct = {t: deployment.count_persons(t, sql) for t in deployment.trust_ids}
        released = {t: e["person_count"] for t, e in report["trusts"].items() if e["status"] == "released"}
        assert released == {t: n for t, n in direct.items() if n >= 10}
        assert report["federated"]["person_count"] == sum(released.values())
        assert sum(report["federated"]["sex"].values()) == report["federated"]["person_count"]
        assert sum(report["federated"]["age"].values()) == report["federated"]["person_count"]
        assert report["threshold"] == 10 and isinstance(report["query_id"], str)


def test_queue_depths_are_visible_to_the_hub(deployment: Deployment) -> None:
    proc = run_omopfed("hub", "queues", "--json", "--env-file", str(deployment.hub_env_file))
    assert_no_traceback(proc)
    depths = json.loads(proc.stdout)
    assert set(depths) == {"trust.t1", "trust.t2", "trust.t3"}
    assert all(
        d["waiting"] >= 0 and d["in_flight"] >= 0 and d["answers_waiting"] >= 0 for d in depths.values()
    )


def test_result_and_status_read_the_store(deployment: Deployment) -> None:
    code, report = deployment.submit_json("--sql", ALL_SQL, "--trusts", "t1,t2")
    assert code == 0 and set(report["trusts"]) == {"t1", "t2"}
    env = str(deployment.hub_env_file)
    again = run_omopfed("hub", "result", report["query_id"], "--json", "--env-file", env)
    assert again.returncode == 0 and json.loads(again.stdout)["federated"] == report["federated"]
    status = run_omopfed("hub", "status", report["query_id"], "--json", "--env-file", env)
    assert json.loads(status.stdout)["status"] == "complete"
    missing = run_omopfed("hub", "result", "nosuchquery", "--env-file", env)
    assert_no_traceback(missing)
    assert missing.returncode == 2 and "unknown query id" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sql", "DELETE FROM person"], "rejected at the hub"),
        (["--sql", "SELECT year_of_birth FROM person"], "person_id"),
        (["--sql", "SELECT p.person_id FROM persn p"], "table 'persn' does not exist"),
        (
            ["--sql", "SELECT p.person_id, p.yaer_of_birth AS y FROM person p"],
            "p.yaer_of_birth does not exist",
        ),
        (
            [
                "--sql",
                "SELECT p.person_id, CASE WHEN p.person_id = 1234 THEN p.year_of_birth END AS v "
                "FROM person p",
            ],
            "(opaque_identifier)",
        ),
        (
            ["--sql", "SELECT p.person_id FROM person p ORDER BY p.year_of_birth LIMIT 10"],
            "(cross_person_row_choice)",
        ),
        (["--sql", ALL_SQL, "--trusts", "t1,nosuch"], "unknown trust"),
        (["--sql", ALL_SQL, "--trusts", ","], "empty"),
        (["--sql", ALL_SQL, "--trusts", "Bad Id"], "invalid trust id"),
        (["--sql-file", "/nonexistent/q.sql"], "cannot read"),
        ([], "exactly one of"),
        (["--sql", ALL_SQL, "--timeout", "-1"], "timeout"),
        (["--sql", ALL_SQL, "--project", "GI bleed"], "is not a project id"),
        (["--sql", ALL_SQL, "--project", "x" * 65], "is not a project id"),
    ],
)
def test_bad_submissions_exit_2_with_one_line(deployment: Deployment, args: list[str], message: str) -> None:
    proc = deployment.submit(*args)
    assert_no_traceback(proc)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""


def test_broker_unreachable_is_a_clear_error(deployment: Deployment, tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    lines = deployment.hub_env_file.read_text().splitlines()
    lines = [ln for ln in lines if not ln.startswith("OMOPFED_BROKER_URL")]
    env_file.write_text("\n".join([*lines, 'OMOPFED_BROKER_URL="redis://hub:x@127.0.0.1:1/0"']) + "\n")
    proc = run_omopfed("hub", "submit", "--env-file", str(env_file), "--sql", ALL_SQL, timeout=60)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert "cannot reach the broker" in proc.stderr


def test_forged_task_is_refused_and_audited(deployment: Deployment) -> None:
    qid, wire = deployment.signed_task("t1", ALL_SQL, key=Ed25519PrivateKey.generate())
    store = deployment.register_query(qid, ["t1"], timeout_s=3)
    deployment.publish_raw("t1", wire)
    entry = eventually(
        lambda: [
            e
            for e in deployment.audit_entries("t1")
            if e["decision"] == "refused" and "wrong_key" in (e["detail"] or "")
        ],
        what="audit of the forged task",
    )
    assert entry
    from hub_broker.finalize import finalize_if_due

    query = eventually(lambda: (q := finalize_if_due(store, qid)) and q.status != "pending" and q, timeout=15)
    assert (query.status, query.answers[0].status, query.answers[0].result) == ("failed", "timeout", None)


def _stored(store: HubStore, query_id: str) -> Query:
    """The hub's record of a query the test registered (so never None)."""
    query = store.get(query_id)
    assert query is not None
    return query


def test_expired_task_is_answered_rejected(deployment: Deployment) -> None:
    from datetime import UTC, datetime, timedelta

    qid, wire = deployment.signed_task(
        "t2", ALL_SQL, issued=datetime.now(UTC) - timedelta(minutes=10), lifetime=timedelta(minutes=1)
    )
    store = deployment.register_query(qid, ["t2"])
    deployment.publish_raw("t2", wire)
    answer = eventually(
        lambda: (a := _stored(store, qid).answers[0]).status != "pending" and a, what="answer"
    )
    assert answer.status == "rejected" and answer.result["reason_code"] == "expired"


def test_replayed_task_runs_once_and_is_stored_once(deployment: Deployment) -> None:
    qid, wire = deployment.signed_task("t3", ALL_SQL)
    store = deployment.register_query(qid, ["t3"])
    deployment.publish_raw("t3", wire)
    deployment.publish_raw("t3", wire)
    eventually(lambda: _stored(store, qid).answers[0].deliveries == 2, what="both deliveries at the hub")
    decisions = [e["decision"] for e in deployment.audit_entries("t3") if e["query_id"] == qid]
    assert decisions == ["released", "resent"]
    assert _stored(store, qid).answers[0].status == "released"


def test_tampered_unknown_and_misaddressed_results_are_refused(deployment: Deployment) -> None:
    # a genuine answer from t1 to a query addressed only to t2: mis-addressed at the hub
    qid, wire = deployment.signed_task("t1", ALL_SQL)
    deployment.register_query(qid, ["t2"], timeout_s=2)
    store = deployment.hub_store()
    before = len(store.refused())
    deployment.publish_raw("t1", wire)
    eventually(
        lambda: any(r.code == "unknown_query" and r.query_id == qid for r in store.refused()),
        what="mis-addressed result refused",
    )
    # garbage and a tampered envelope pushed onto t1's results key with t1's own broker credentials
    t1 = redis.Redis.from_url(deployment.trust_broker_url("t1"))
    t1.rpush("hub.results.t1", json.dumps({"not": "an envelope"}))
    t1.rpush("hub.results.t1", "x" * 10)
    # a real sealed answer from t1's ledger with one ciphertext byte flipped
    import base64
    import sqlite3

    ledger = sqlite3.connect(deployment.ledger_path("t1"))
    (sealed,) = ledger.execute("SELECT envelope FROM executed WHERE envelope IS NOT NULL LIMIT 1").fetchone()
    ledger.close()
    wire = json.loads(sealed)
    raw = bytearray(base64.b64decode(wire["ciphertext"]))
    raw[0] ^= 1
    wire["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    t1.rpush("hub.results.t1", json.dumps(wire))
    eventually(lambda: len(store.refused()) >= before + 4, what="refusals counted")
    codes = [r.code for r in store.refused()[before:]]
    assert codes.count("malformed") == 2 and "bad_signature" in codes
    hub = redis.Redis.from_url(deployment.hub_redis_url)
    assert hub.llen("hub.results.t1") == 0
    # the reducer is still alive and serving
    code, report = deployment.submit_json("--sql", ALL_SQL, "--trusts", "t1")
    assert code == 0 and report["trusts"]["t1"]["status"] == "released"
