"""No answer is lost to a broker outage: the ledger keeps it until the broker has taken it.

Publishing against a real broker that is not there (a closed port) fails like an outage does; the answer
stays in the ledger, and ``republish_pending`` delivers it once the broker answers again, until its task
expires.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from omop.transport import results_key
from omopfed.localservices import free_port
from trust_worker.task_handler import republish_pending
from trust_worker.task_ledger import TaskLedger

pytestmark = pytest.mark.services


def _publisher(url: str, trust_id: str) -> Callable[[dict[str, Any]], None]:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(wire: dict[str, Any]) -> None:
        client.rpush(results_key(trust_id), json.dumps(wire))

    return publish


def _answered(ledger: TaskLedger, query_id: str, expires_in_s: float) -> None:
    ledger.claim(query_id, datetime.now(UTC) + timedelta(seconds=expires_in_s))
    ledger.finish(query_id, json.dumps({"query_id": query_id}))


def test_an_answer_the_broker_could_not_take_is_sent_once_it_is_back(tmp_path: Path, redis_url: str) -> None:
    ledger = TaskLedger(tmp_path / "ledger.sqlite")
    _answered(ledger, "q-early", 60)
    _answered(ledger, "q-late", 60)
    _answered(ledger, "q-expired", -1)
    down = _publisher(f"redis://127.0.0.1:{free_port()}/0", "t1")  # nothing listens there
    assert republish_pending(ledger, down) == 0
    assert [q for q, _ in ledger.unpublished(datetime.now(UTC))] == ["q-early", "q-late"]
    assert republish_pending(ledger, _publisher(redis_url, "t1")) == 2
    sent = redis.Redis.from_url(redis_url).lrange(results_key("t1"), 0, -1)
    assert [json.loads(m)["query_id"] for m in sent] == ["q-early", "q-late"]  # in order, once each
    assert ledger.unpublished(datetime.now(UTC)) == []
    assert republish_pending(ledger, _publisher(redis_url, "t1")) == 0  # nothing twice
    ledger.close()


def test_a_published_answer_is_not_sent_again(tmp_path: Path, redis_url: str) -> None:
    ledger = TaskLedger(tmp_path / "ledger.sqlite")
    _answered(ledger, "q", 60)
    ledger.mark_published("q")
    assert republish_pending(ledger, _publisher(redis_url, "t1")) == 0
    assert redis.Redis.from_url(redis_url).llen(results_key("t1")) == 0
    ledger.close()


def test_a_ledger_from_before_re_publishing_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE executed (query_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, "
        "envelope TEXT)"
    )
    old.execute("INSERT INTO executed VALUES ('q-old', '2026-01-01T00:00:00+00:00', '2026-01-01', '{}')")
    old.commit()
    old.close()
    ledger = TaskLedger(path)
    assert ledger.claim("q-old").state == "done"  # history kept
    assert ledger.unpublished(datetime.now(UTC)) == []  # no expiry known: never re-sent blindly
    _answered(ledger, "q-new", 60)
    assert [q for q, _ in ledger.unpublished(datetime.now(UTC))] == ["q-new"]
    ledger.close()


def test_the_ledger_forgets_queries_finished_before_its_retention(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = TaskLedger(path)
    _answered(ledger, "q-old", 60)
    ledger.claim("q-running", datetime.now(UTC) + timedelta(seconds=60))  # started, never finished
    aged = sqlite3.connect(path)
    aged.execute("UPDATE executed SET finished_at = '2020-01-01T00:00:00+00:00' WHERE query_id = 'q-old'")
    aged.commit()
    aged.close()
    assert ledger.prune(datetime.now(UTC) - timedelta(days=30)) == 1
    assert ledger.claim("q-old").state == "new"  # forgotten
    assert ledger.claim("q-running").state == "interrupted"  # never forgotten while unfinished
    ledger.close()


def test_a_retention_shorter_than_a_task_can_live_is_refused() -> None:
    from pydantic import ValidationError

    from trust_worker.policy_file import TrustPolicy

    with pytest.raises(ValidationError):
        TrustPolicy(ledger_retention_days=7)
