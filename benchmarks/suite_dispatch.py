"""Dispatch latency: submit → the trust worker starts the task, and submit → pooled result.

A trivial cohort (every person of a 200-person trust) so the database contributes next to nothing and
what is left is the transport: signing, queueing, the worker picking the task up, sealing, the reducer
storing and pooling. Queries are sent one after another (each waits for the previous one to be pooled),
after a few warm-up queries that open connections and fill caches.

Where the time goes is read from timestamps the system writes anyway: the trust's ledger (task claimed,
answer sealed) and the hub store (answer stored, query pooled).
"""

from __future__ import annotations

from typing import Any

from benchmarks.config import Config
from benchmarks.roundtrip import RoundTrip, round_trip
from benchmarks.stacks import Stack, ledger_times
from benchmarks.stats import summary
from benchmarks.submit_parts import profile_submit
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack
from omop.states import QueryStatus

NAME = "dispatch"
TRIVIAL_SQL = "SELECT person_id FROM person"
POLL_S = 0.005
PROFILED_SUBMITS = 20


def timeline(stack: Stack, trips: list[RoundTrip]) -> dict[str, list[float]]:
    """Per-query (and per query-trust pair) intervals in milliseconds, from ledgers and the hub store."""
    series: dict[str, list[float]] = {
        k: []
        for k in ("submit_call", "start", "last_start", "trust_run", "reply", "pool", "pooled", "observed")
    }
    trusts = [a.trust_id for a in trips[0].answers] if trips else []
    ledgers = {t: ledger_times(stack.state_dir(t), [trip.query_id for trip in trips]) for t in trusts}
    for trip in trips:
        series["submit_call"].append(ms(trip.sent.submit_s))
        series["observed"].append(ms(trip.observed_s))
        if trip.finalized_s is not None:
            series["pooled"].append(ms(trip.finalized_s))
        starts = []
        for answer in trip.answers:
            ledger = ledgers[answer.trust_id].get(trip.query_id)
            if ledger is None:
                continue
            started, finished = ledger
            start = ms((started - trip.sent.started_at).total_seconds())
            starts.append(start)
            series["start"].append(start)
            if finished is not None:
                series["trust_run"].append(ms((finished - started).total_seconds()))
                if answer.received_s is not None:
                    done = ms((finished - trip.sent.started_at).total_seconds())
                    series["reply"].append(ms(answer.received_s) - done)
        if starts:
            series["last_start"].append(max(starts))
        received = [a.received_s for a in trip.answers if a.received_s is not None]
        if received and trip.finalized_s is not None:
            series["pool"].append(ms(trip.finalized_s - max(received)))
    return series


def _run(ctx: Context, stack: Stack | None) -> Row:
    st = need_stack(stack)
    cfg = ctx.config
    ids = st.trust_ids(cfg.dispatch_trusts)
    for _ in range(cfg.dispatch_warmup):
        round_trip(st, TRIVIAL_SQL, ids, poll_s=POLL_S)
    ctx.log(f"dispatch: {cfg.dispatch_queries} sequential queries to {len(ids)} trust(s)")
    trips = [round_trip(st, TRIVIAL_SQL, ids, poll_s=POLL_S) for _ in range(cfg.dispatch_queries)]
    series = timeline(st, trips)
    not_complete = sum(1 for t in trips if t.status != QueryStatus.COMPLETE)
    return {
        "trusts": len(ids),
        "queries": len(trips),
        "persons_per_trust": st.persons,
        "sql": TRIVIAL_SQL,
        "poll_ms": POLL_S * 1000,
        "not_complete": not_complete,
        "ms": {name: summary(values, 2) for name, values in series.items()},
        "submit_profile": profile_submit(st, ids, PROFILED_SUBMITS),
    }


def plan(config: Config) -> Plan:
    need = StackNeed(config.dispatch_trusts, config.small_persons)
    return Plan([Unit(NAME, f"{config.dispatch_trusts} trusts", need, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
