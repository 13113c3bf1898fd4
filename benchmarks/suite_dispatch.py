"""Dispatch latency: submit → the trust worker starts the task, and submit → pooled result.

A trivial cohort (every person of a 200-person trust) so the database contributes next to nothing and
what is left is the transport: signing, queueing, the worker picking the task up, sealing, the reducer
storing and pooling. Queries are sent one after another (each waits for the previous one to be pooled),
after a few warm-up queries that open connections and fill caches.

Where the time goes is read from timestamps the system writes anyway: the trust's ledger (task claimed,
answer sealed) and the hub store (answer stored, query pooled).
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

from benchmarks.config import Config
from benchmarks.roundtrip import RoundTrip, collect, round_trip, send
from benchmarks.stacks import Stack, ledger_times
from benchmarks.stats import summary
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack

NAME = "dispatch"
TRIVIAL_SQL = "SELECT person_id FROM person"
POLL_S = 0.005
PROFILED_SUBMITS = 20
# Parts of hub_broker.submit.submit(), found in the profile by (file suffix, function name).
SUBMIT_PARTS = (
    ("SQL policy pre-check", "hub_broker/submit.py", "precheck"),
    ("load hub private keys", "omop/keys.py", "load_hub_private"),
    ("load trust registry", "omop/keys.py", "load_trust_registry"),
    ("create a Celery app", "hub_broker/celery_app.py", "hub_app"),
    ("sign tasks", "omop/crypto.py", "sign_task"),
    ("connect to the broker", "kombu/connection.py", "ensure_connection"),
    ("record the query in the hub store", "hub_broker/store.py", "create_query"),
    ("publish tasks", "celery/app/base.py", "send_task"),
)


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


def profile_submit(stack: Stack, trust_ids: list[str], count: int = PROFILED_SUBMITS) -> dict[str, Any]:
    """Where ``submit()`` spends its time: cumulative milliseconds per call of its parts under cProfile.

    Profiling slows everything down, so these figures are for proportions, not for the latency table;
    the queries are answered (and waited for) like any other.
    """
    profiler = cProfile.Profile()
    sent = []
    profiler.enable()
    for _ in range(count):
        sent.append(send(stack, TRIVIAL_SQL, trust_ids))
    profiler.disable()
    for item in sent:
        collect(stack, item, 0.0)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = getattr(pstats.Stats(profiler), "stats", {})

    def cumulative_ms(suffix: str, function: str) -> float:
        seconds: float = sum(
            float(v[3])
            for (path, _line, name), v in table.items()
            if name == function and path.endswith(suffix)
        )
        return round(1000 * seconds / count, 2)

    return {
        "calls": count,
        "trusts": len(trust_ids),
        "submit_ms": cumulative_ms("hub_broker/submit.py", "submit"),
        "parts_ms": {label: cumulative_ms(suffix, fn) for label, suffix, fn in SUBMIT_PARTS},
    }


def _run(ctx: Context, stack: Stack | None) -> Row:
    st = need_stack(stack)
    cfg = ctx.config
    ids = st.trust_ids(cfg.dispatch_trusts)
    for _ in range(cfg.dispatch_warmup):
        round_trip(st, TRIVIAL_SQL, ids, poll_s=POLL_S)
    ctx.log(f"dispatch: {cfg.dispatch_queries} sequential queries to {len(ids)} trust(s)")
    trips = [round_trip(st, TRIVIAL_SQL, ids, poll_s=POLL_S) for _ in range(cfg.dispatch_queries)]
    series = timeline(st, trips)
    not_complete = sum(1 for t in trips if t.status != "complete")
    return {
        "trusts": len(ids),
        "queries": len(trips),
        "persons_per_trust": st.persons,
        "sql": TRIVIAL_SQL,
        "poll_ms": POLL_S * 1000,
        "not_complete": not_complete,
        "ms": {name: summary(values, 2) for name, values in series.items()},
        "submit_profile": profile_submit(st, ids),
    }


def plan(config: Config) -> Plan:
    need = StackNeed(config.dispatch_trusts, config.small_persons)
    return Plan([Unit(NAME, f"{config.dispatch_trusts} trusts", need, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
