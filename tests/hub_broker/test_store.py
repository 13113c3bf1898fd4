from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub_broker.finalize import finalize_if_due
from hub_broker.store import HubStore, Query, utcnow
from omop.errors import OmopFedError


def _store(tmp_path: Path) -> HubStore:
    return HubStore(f"sqlite:///{tmp_path / 'hub.db'}")


def _finalized(store: HubStore, query_id: str, now: datetime | None = None) -> Query:
    """``finalize_if_due`` for a query the test created (so never None)."""
    query = finalize_if_due(store, query_id, now=now)
    assert query is not None
    return query


def _released(n: int, sex: dict[str, int]) -> dict[str, object]:
    return {"status": "released", "person_count": n, "sex": sex, "age": {"40-49": n}}


def test_each_answer_is_stored_once_and_the_query_finalises_when_all_answered(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create_query(
        query_id="q1",
        project_id="p",
        sql="s",
        trusts=["a", "b"],
        threshold=10,
        deadline_at=utcnow() + timedelta(minutes=5),
    )
    assert (
        store.record_answer("q1", "a", "released", None, _released(30, {"Male": 12, "Female": 18}))
        == "stored"
    )
    assert store.record_answer("q1", "a", "released", None, _released(99, {"Male": 99})) == "duplicate"
    assert _finalized(store, "q1").status == "pending"  # b has not answered, deadline not reached
    assert (
        store.record_answer("q1", "b", "released", None, _released(20, {"Male": 10, "Female": 10}))
        == "stored"
    )
    query = _finalized(store, "q1")
    assert query.status == "complete"
    assert query.pooled is not None
    assert query.pooled["person_count"] == 50
    assert query.pooled["sex"] == {"Male": 22, "Female": 28}
    answer_a = next(a for a in query.answers if a.trust_id == "a")
    assert answer_a.result is not None
    assert (answer_a.deliveries, answer_a.result["person_count"]) == (2, 30)


def test_deadline_marks_missing_trusts_timeout(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create_query(
        query_id="q2",
        project_id="p",
        sql="s",
        trusts=["a", "b"],
        threshold=10,
        deadline_at=utcnow() + timedelta(seconds=30),
    )
    store.record_answer("q2", "a", "released", None, _released(15, {"Male": 15}))
    query = _finalized(store, "q2", now=utcnow() + timedelta(seconds=31))
    assert query.status == "partial"
    assert {a.trust_id: a.status for a in query.answers} == {"a": "released", "b": "timeout"}
    assert (
        store.record_answer("q2", "b", "released", None, _released(15, {"Male": 15})) == "duplicate"
    )  # late


def test_unknown_query_and_trust_are_not_addressed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert finalize_if_due(store, "nope") is None
    assert store.record_answer("nope", "a", "released", None, None) == "unknown"


def test_unusable_store_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OmopFedError, match="cannot open the hub store"):
        HubStore("notadriver://x")
