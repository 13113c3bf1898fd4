"""Scale-out: time to the pooled result as the number of trusts grows (small databases).

One stack with the largest trust count is started; each measurement addresses the first N trusts (the
others stay idle in the broker's blocking pop). Queries are sequential, after two warm-up queries per N.
The time to the pooled result is the moment the reducer wrote it to the hub store (the caller's view,
polling every 20 ms, is reported too). The stack's memory is recorded too: a 32-trust stack is 32
PostgreSQL servers and 32 worker processes on one machine.
"""

from __future__ import annotations

import itertools
from statistics import median
from typing import Any

from benchmarks.config import Config
from benchmarks.procmem import meminfo_kb, rss_kb, tree_pss_kb
from benchmarks.roundtrip import RoundTrip, round_trip
from benchmarks.stacks import Stack, ledger_times
from benchmarks.stats import summary
from benchmarks.submit_parts import profile_submit
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack
from omop.states import QueryStatus

NAME = "scale"
SQL = "SELECT person_id FROM person"
POLL_S = 0.02  # wait_for's default: a tighter poll competes with the reducer for CPU
WARMUP = 2
PROFILED_SUBMITS = 10


def fan_out(stack: Stack, trips: list[RoundTrip]) -> dict[str, Any]:
    """Per query: submit → the last trust starts (ledger), and the hub's spacing between stored answers.

    The reducer handles answers one at a time, so the median gap between consecutive ``received_at``
    times is an upper bound on what one answer costs it (the gap also includes waiting for answers that
    have not arrived yet).
    """
    trusts = [a.trust_id for a in trips[0].answers]
    ledgers = {t: ledger_times(stack.state_dir(t), [trip.query_id for trip in trips]) for t in trusts}
    last_start, gaps = [], []
    for trip in trips:
        starts = [
            (ledgers[t][trip.query_id][0] - trip.sent.started_at).total_seconds()
            for t in trusts
            if trip.query_id in ledgers[t]
        ]
        if starts:
            last_start.append(ms(max(starts)))
        received = sorted(a.received_s for a in trip.answers if a.received_s is not None)
        if len(received) > 1:
            gaps.append(ms(median([b - a for a, b in itertools.pairwise(received)])))
    return {"last_start_ms": summary(last_start, 1), "answer_gap_ms": summary(gaps, 2)}


def stack_memory(stack: Stack) -> dict[str, Any]:
    state = stack.state
    workers = [rss_kb(n.worker_pid) or 0 for n in state.trusts.values() if n.worker_pid]
    pg = [tree_pss_kb(n.postgres["pid"]) for n in state.trusts.values()]
    reducer = rss_kb(state.reducer_pid) if state.reducer_pid else None
    available = meminfo_kb("MemAvailable")
    total = meminfo_kb("MemTotal")
    return {
        "trusts": len(state.trusts),
        "worker_rss_mb_median": round(median(workers) / 1024, 1) if workers else None,
        "workers_rss_mb_total": round(sum(workers) / 1024, 1),
        "postgres_pss_mb_total": round(sum(pg) / 1024, 1),
        "reducer_rss_mb": round(reducer / 1024, 1) if reducer else None,
        "machine_available_mb": round(available / 1024) if available else None,
        "machine_total_mb": round(total / 1024) if total else None,
    }


def _run(ctx: Context, stack: Stack | None) -> Row:
    st = need_stack(stack)
    rows = []
    for n in ctx.config.scale_trusts:
        ids = st.trust_ids(n)
        for _ in range(WARMUP):
            round_trip(st, SQL, ids, poll_s=POLL_S)
        trips = [round_trip(st, SQL, ids, poll_s=POLL_S) for _ in range(ctx.config.scale_repeats)]
        pooled = [ms(t.finalized_s) for t in trips if t.finalized_s is not None]
        observed = [ms(t.observed_s) for t in trips]
        ctx.log(f"scale {n} trust(s): pooled in {median(pooled):.0f} ms (median)")
        rows.append(
            {
                "trusts": n,
                "repeats": len(trips),
                "not_complete": sum(1 for t in trips if t.status != QueryStatus.COMPLETE),
                "pooled_ms": summary(pooled, 1),
                "observed_ms": summary(observed, 1),
                "submit_call_ms": summary([ms(t.sent.submit_s) for t in trips], 1),
                **fan_out(st, trips),
            }
        )
    return {
        "persons_per_trust": st.persons,
        "stack_up_seconds": round(st.up_seconds, 1),
        "memory": stack_memory(st),
        "rows": rows,
        "submit_profile": profile_submit(st, st.trust_ids(max(ctx.config.scale_trusts)), PROFILED_SUBMITS),
    }


def plan(config: Config) -> Plan:
    need = StackNeed(max(config.scale_trusts), config.small_persons)
    return Plan([Unit(NAME, f"{max(config.scale_trusts)}-trust stack", need, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
