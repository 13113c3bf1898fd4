"""Closing a query: once every addressed trust answered, or the deadline passed, pool and store.

Called by the reducer after each stored answer and, at least once a second, for every query past its
deadline (so a deadline runs by itself, whether or not anyone looks), and by ``hub submit`` / ``hub
status`` / ``hub result`` when they see a query past its deadline: whoever looks first finalises, and
``HubStore.save_pooled`` makes sure only one of them writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub_broker.numeric_pooling import pool_numeric
from hub_broker.pooling import overall_status, pool_released
from hub_broker.store import HubStore, Query, utcnow
from omop.numeric_spec import NumericRequest
from omop.states import QueryStatus, ResultStatus, TrustStatus

TIMEOUT_DETAIL = "no answer before the query's deadline"


def finalize_due(store: HubStore, now: datetime | None = None) -> int:
    """Finalise every pending query whose deadline has passed; returns how many were."""
    now = now or utcnow()
    done = 0
    for query_id in store.due_query_ids(now):
        query = finalize_if_due(store, query_id, now)
        done += query is not None and query.status != QueryStatus.PENDING
    return done


def finalize_if_due(store: HubStore, query_id: str, now: datetime | None = None) -> Query | None:
    """Finalise ``query_id`` if it is due and return its current state (None for an unknown id)."""
    query = store.get(query_id)
    if query is None or query.status != QueryStatus.PENDING:
        return query
    now = now or utcnow()
    waiting = [a for a in query.answers if a.status == TrustStatus.PENDING]
    if waiting and now < query.deadline_at:
        return query
    if waiting:
        store.mark_timeouts(query_id, TIMEOUT_DETAIL)
        query = store.get(query_id)
        assert query is not None
    results: list[dict[str, Any]] = [
        a.result if a.result is not None else {"status": a.status} for a in query.answers
    ]
    pooled = pool_released(results, query.threshold)
    numeric = NumericRequest.from_options(query.options or {})
    if numeric is not None:
        released = [r for r in results if r.get("status") == ResultStatus.RELEASED]
        pooled["numeric"] = pool_numeric(
            [r.get("numeric") for r in released],
            query.threshold,
            numeric.histograms,
            [r.get("privacy") for r in released],
        )
    store.save_pooled(query_id, overall_status(a.status for a in query.answers), pooled)
    return store.get(query_id)
