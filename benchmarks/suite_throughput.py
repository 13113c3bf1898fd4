"""Throughput: many queries queued at once for three trusts; completed queries per second, none lost.

All queries are submitted back to back (the trusts start answering while the rest are still being
queued), then the store is read until every one is final. Elapsed time runs from the first ``submit()``
call to the last pooled result (the hub store's ``finalized_at``). Then the books are checked: every query
complete, every trust answered each query exactly once (hub store ``deliveries == 1``, one ledger row and
one answering audit entry per query id at every trust).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.config import Config
from benchmarks.roundtrip import collect, send
from benchmarks.stacks import Stack, ledger_count
from benchmarks.stats import summary
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack
from omop.states import ANSWERED, AuditDecision, QueryStatus

NAME = "throughput"
SQL = "SELECT person_id FROM person"
ANSWERING = (AuditDecision.RELEASED, AuditDecision.SUPPRESSED, AuditDecision.REJECTED, AuditDecision.ERROR)


def audit_answers(state_dir: Path, query_ids: set[str]) -> Counter[str]:
    """How many answering audit entries (not refusals or re-sends) each of ``query_ids`` has."""
    counts: Counter[str] = Counter()
    path = state_dir / "audit.jsonl"
    if not path.exists():  # a trust that never answered anything
        return counts
    with path.open() as fh:
        for line in fh:
            entry = json.loads(line)
            if entry.get("query_id") in query_ids and entry.get("decision") in ANSWERING:
                counts[entry["query_id"]] += 1
    return counts


def _run(ctx: Context, stack: Stack | None) -> Row:
    st = need_stack(stack)
    n = ctx.config.throughput_queries
    ids = st.trust_ids(ctx.config.dispatch_trusts)
    ctx.log(f"throughput: queueing {n} queries for {len(ids)} trust(s)")
    t0 = time.perf_counter()
    sents = [send(st, SQL, ids, timeout_s=max(600.0, n * 2.0)) for _ in range(n)]
    queued_s = time.perf_counter() - t0
    trips = [collect(st, s, 0.0) for s in sents]
    finals = [t.finalized_s for t in trips if t.finalized_s is not None]
    elapsed = max(finals) if finals else float("nan")
    qids = {t.query_id for t in trips}
    not_complete = sum(1 for t in trips if t.status != QueryStatus.COMPLETE)
    unanswered = sum(1 for t in trips for a in t.answers if a.status not in ANSWERED)
    duplicate_deliveries = sum(1 for t in trips for a in t.answers if a.deliveries != 1)
    ledger_rows = {tid: ledger_count(st.state_dir(tid), list(qids)) for tid in ids}
    audit = {tid: audit_answers(st.state_dir(tid), qids) for tid in ids}
    audit_missing = sum(1 for tid in ids for q in qids if audit[tid][q] == 0)
    audit_duplicates = sum(1 for tid in ids for q in qids if audit[tid][q] > 1)
    return {
        "queries": n,
        "trusts": len(ids),
        "sql": SQL,
        "queue_seconds": round(queued_s, 3),
        "elapsed_seconds": round(elapsed, 3),
        "queries_per_second": round(n / elapsed, 1) if elapsed > 0 else None,
        "answers_per_second": round(n * len(ids) / elapsed, 1) if elapsed > 0 else None,
        "submit_call_ms": summary([ms(s.submit_s) for s in sents], 2),
        "checks": {
            "not_complete": not_complete,
            "unanswered": unanswered,
            "duplicate_deliveries": duplicate_deliveries,
            "ledger_rows_missing": sum(n - c for c in ledger_rows.values()),
            "audit_missing": audit_missing,
            "audit_duplicates": audit_duplicates,
        },
        "lost": not_complete + unanswered,
        "duplicated": duplicate_deliveries + audit_duplicates,
    }


def plan(config: Config) -> Plan:
    need = StackNeed(config.dispatch_trusts, config.small_persons)
    return Plan([Unit(NAME, f"{config.throughput_queries} queries", need, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
