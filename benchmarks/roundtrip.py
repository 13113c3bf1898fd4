"""One federated query through the in-process hub API, with the timestamps the system records anyway.

The hub store keeps when each trust's answer was stored (``received_at``) and when the query was pooled
(``finalized_at``); the trust's ledger keeps when its worker started and finished the task. All clocks are
this machine's, so subtracting the wall-clock time taken just before ``submit()`` gives a timeline of
the query without instrumenting the product.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from benchmarks.stacks import Stack
from hub_broker.submit import submit, wait_for

TIMEOUT_S = 600.0


@dataclass(frozen=True)
class AnswerTiming:
    trust_id: str
    status: str
    deliveries: int
    received_s: float | None  # answer stored at the hub, seconds after submit() was called


@dataclass(frozen=True)
class Sent:
    query_id: str
    started_at: datetime  # wall clock just before submit()
    submit_s: float  # how long submit() itself took


@dataclass(frozen=True)
class RoundTrip:
    sent: Sent
    observed_s: float  # submit() + wait_for() as the caller sees it (includes the polling interval)
    finalized_s: float | None  # pooled result written to the store, seconds after submit() was called
    status: str
    person_count: int | None
    answers: tuple[AnswerTiming, ...]

    @property
    def query_id(self) -> str:
        return self.sent.query_id


def send(stack: Stack, sql: str, trusts: Sequence[str], timeout_s: float = TIMEOUT_S) -> Sent:
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    sub = submit(stack.settings, stack.store, sql=sql, trusts=list(trusts), timeout_s=timeout_s)
    return Sent(sub.query_id, started_at, time.perf_counter() - t0)


def collect(stack: Stack, sent: Sent, observed_s: float, poll_s: float = 0.05) -> RoundTrip:
    """Wait until ``sent`` is final, then read its timeline from the hub store."""
    query = wait_for(stack.store, sent.query_id, poll_s=poll_s)
    pooled = query.pooled or {}
    return RoundTrip(
        sent=sent,
        observed_s=observed_s,
        finalized_s=_since(sent.started_at, query.finalized_at),
        status=query.status,
        person_count=pooled.get("person_count"),
        answers=tuple(
            AnswerTiming(
                trust_id=a.trust_id,
                status=a.status,
                deliveries=a.deliveries,
                received_s=_since(sent.started_at, a.received_at),
            )
            for a in query.answers
        ),
    )


def round_trip(stack: Stack, sql: str, trusts: Sequence[str], *, poll_s: float = 0.005) -> RoundTrip:
    """Submit, wait (polling every ``poll_s``), and return the query's timeline."""
    t0 = time.perf_counter()
    sent = send(stack, sql, trusts)
    wait_for(stack.store, sent.query_id, poll_s=poll_s)
    observed = time.perf_counter() - t0
    return collect(stack, sent, observed)


def _since(start: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else (moment - start).total_seconds()
