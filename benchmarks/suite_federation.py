"""Federation overhead: a cohort-statistics query end to end vs the slowest trust running its SQL directly.

For each population size, every query is timed four ways on the same stack:

* **direct**: each trust's database runs the exact aggregation statement the trust pipeline would run
  (``cohort_statistics_sql`` over the validated, re-emitted SQL) with psycopg, one trust at a time; the
  reference is the slowest trust's median. This is the floor a federation cannot beat.
* **direct, concurrent**: the same statement at every trust at once (one thread per trust). On a machine
  with fewer cores than trusts the databases compete for CPU, which the end-to-end runs pay too.
* **in-process**: ``submit()`` + ``wait_for()`` through the hub API, polling the store every 20 ms (the
  API's default, as the command does; a tighter poll would take CPU from the databases on a small machine).
  The moment the pooled result was written to the store is reported too.
* **whole command**: ``omopfed hub submit --json`` as a subprocess, as a researcher runs it (interpreter
  start-up, imports and settings included; it polls every 20 ms).

Each is repeated (the direct and in-process runs after one warm-up run). The pooled person count is
checked against the sum of the direct person counts.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.commands import EXAMPLES, last_line, omopfed_command, run_timed
from benchmarks.config import Config
from benchmarks.roundtrip import round_trip
from benchmarks.stacks import Stack, audit_elapsed_ms
from benchmarks.stats import ratio, summary
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack
from omop.sql_policy import validate
from trust_worker.aggregate_sql import cohort_statistics_sql
from trust_worker.db import connect
from trust_worker.policy_file import TrustPolicy

NAME = "federation"
QUERIES: tuple[tuple[str, Path], ...] = (
    ("gi-bleed", EXAMPLES / "gi-bleed.sql"),
    ("six-features", EXAMPLES / "flower-six-features.sql"),
)
POLL_S = 0.02  # wait_for's default


def aggregate_statement(sql: str) -> str:
    validated = validate(sql)
    return cohort_statistics_sql(validated.sql, validated.output_columns)


class DirectRunner:
    """One open reader connection per trust, as the worker holds one; runs the statement, times it.

    The session gets the same ``work_mem`` the trust's executor sets for every task (the stack's trusts
    run the default policy), so the reference differs from the pipeline only by the pipeline's own work.
    """

    def __init__(self, stack: Stack, trust_ids: list[str]) -> None:
        self.conns = {t: connect(stack.state.trusts[t].reader_url, autocommit=True) for t in trust_ids}
        work_mem = f"{int(TrustPolicy().limits().work_mem_mb)}MB"
        for conn in self.conns.values():
            conn.execute("SELECT set_config('work_mem', %s, false)", (work_mem,))

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()

    def run(self, trust_id: str, statement: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        row = self.conns[trust_id].execute(statement).fetchone()
        seconds = time.perf_counter() - t0
        assert row is not None
        return seconds, int(row[0])

    def run_all_at_once(self, statement: str) -> float:
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(self.conns) + 1)

        def work(trust_id: str) -> None:
            barrier.wait()
            try:
                self.run(trust_id, statement)
            except BaseException as exc:  # reported after the join
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in self.conns]
        for th in threads:
            th.start()
        barrier.wait()
        t0 = time.perf_counter()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        return time.perf_counter() - t0


def whole_command(
    stack: Stack, sql_file: Path, trust_ids: list[str], extra: list[str]
) -> tuple[float, dict[str, Any]]:
    args = [
        *omopfed_command(),
        "hub",
        "submit",
        "--env-file",
        str(stack.env_file),
        "--sql-file",
        str(sql_file),
        "--trusts",
        ",".join(trust_ids),
        "--timeout",
        "600",
        "--json",
        *extra,
    ]
    timed = run_timed(args)
    if timed.returncode not in (0, 3):
        raise RuntimeError(f"omopfed hub submit exited {timed.returncode}: {last_line(timed.stderr)}")
    report: dict[str, Any] = json.loads(timed.stdout)
    return timed.seconds, report


def measure_query(ctx: Context, stack: Stack, name: str, sql_file: Path, trust_ids: list[str]) -> Row:
    reps = ctx.config.federation_repeats
    sql = sql_file.read_text()
    statement = aggregate_statement(sql)
    direct = DirectRunner(stack, trust_ids)
    try:
        counts = {t: direct.run(t, statement)[1] for t in trust_ids}  # warm-up
        per_trust: dict[str, list[float]] = {t: [] for t in trust_ids}
        for _ in range(reps):
            for t in trust_ids:
                per_trust[t].append(ms(direct.run(t, statement)[0]))
        direct.run_all_at_once(statement)
        concurrent = [ms(direct.run_all_at_once(statement)) for _ in range(reps)]
    finally:
        direct.close()
    round_trip(stack, sql, trust_ids, poll_s=POLL_S)  # warm-up
    trips = [round_trip(stack, sql, trust_ids, poll_s=POLL_S) for _ in range(reps)]
    commands = [whole_command(stack, sql_file, trust_ids, []) for _ in range(reps)]
    slowest = max(median(v) for v in per_trust.values())
    inproc = [ms(t.observed_s) for t in trips]
    pooled = [ms(t.finalized_s) for t in trips if t.finalized_s is not None]
    # answers carry no timing (it would tell about the data); each trust's audit log keeps its own
    trust_ms = [
        max(audit_elapsed_ms(stack.state_dir(a.trust_id), t.query_id) or 0.0 for a in t.answers)
        for t in trips
    ]
    cli = [ms(seconds) for seconds, _ in commands]
    row: Row = {
        "persons_per_trust": stack.persons,
        "trusts": len(trust_ids),
        "query": name,
        "person_count_direct": sum(counts.values()),
        "person_count_pooled": trips[-1].person_count,
        "statuses": sorted({t.status for t in trips} | {r["status"] for _, r in commands}),
        "ms": {
            "direct_per_trust": {t: summary(v, 1) for t, v in per_trust.items()},
            "direct_slowest_median": round(slowest, 1),
            "direct_concurrent": summary(concurrent, 1),
            "trust_pipeline_slowest": summary(trust_ms, 1),
            "in_process": summary(inproc, 1),
            "in_process_pooled_in_store": summary(pooled, 1),
            "whole_command": summary(cli, 1),
        },
        "ratio": {
            "in_process": ratio(median(inproc), slowest),
            "whole_command": ratio(median(cli), slowest),
            "in_process_vs_concurrent": ratio(median(inproc), median(concurrent)),
        },
    }
    ctx.log(
        f"federation {stack.persons:,} x {len(trust_ids)} {name}: direct {slowest:.0f} ms, "
        f"in-process {median(inproc):.0f} ms, command {median(cli):.0f} ms"
    )
    return row


def _unit(config: Config, persons: int, name: str, path: Path) -> Unit:
    """One query at one population: a failure (say a statement timeout at 1M) costs only this row."""

    def run(ctx: Context, stack: Stack | None) -> Row:
        st = need_stack(stack)
        return measure_query(ctx, st, name, path, st.trust_ids(ctx.config.federation_trusts))

    label = f"{persons:,} persons, {name}"
    return Unit(NAME, label, StackNeed(config.federation_trusts, persons), run)


def plan(config: Config) -> Plan:
    return Plan([_unit(config, p, name, path) for p in config.federation_persons for name, path in QUERIES])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return {"rows": rows}
