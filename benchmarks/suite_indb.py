"""In-database aggregation (the trust pipeline) vs fetching the cohort into Python (FLIP, Flower).

Both variants answer the same question over the same cohort, every person of a trust of N persons (so N
cohort rows), each run in a fresh child process (``benchmarks.indb_child``) that reports its own time and
peak resident memory. One discarded run of each variant first warms PostgreSQL's cache, then the
variants alternate. Also runnable alone: ``python -m benchmarks indb``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.commands import REPO, clean_env, last_line
from benchmarks.config import Config
from benchmarks.indb_child import COHORT_COLUMNS
from benchmarks.stacks import Stack
from benchmarks.stats import ratio, summary
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, need_stack
from omop.sql_policy import validate

NAME = "indb"
COHORT_SQL = "SELECT " + ", ".join(f"p.{c}" for c in COHORT_COLUMNS) + " FROM person p"
VARIANTS = ("pipeline", "fetchall")


def run_child(variant: str, reader_url: str, sql: str) -> dict[str, Any]:
    env = {**clean_env(), "BENCH_READER_URL": reader_url, "BENCH_SQL": sql}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.indb_child", variant],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} child failed: {last_line(proc.stderr)}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both variants found the same persons, rows, and sex and age distributions.

    Cells this large are released unchanged; empty cells (which the trust lists as 0) are ignored.
    """

    def nonzero(table: dict[str, int] | None) -> dict[str, int]:
        return {k: v for k, v in (table or {}).items() if v}

    same_counts = all(a.get(k) == b.get(k) for k in ("person_count", "row_count"))
    return same_counts and all(nonzero(a.get(k)) == nonzero(b.get(k)) for k in ("sex", "age"))


def _unit(rows: int) -> Unit:
    def run(ctx: Context, stack: Stack | None) -> Row:
        st = need_stack(stack)
        node = st.state.trusts[st.trust_ids(1)[0]]
        sql = {"pipeline": COHORT_SQL, "fetchall": validate(COHORT_SQL).sql}
        for variant in VARIANTS:  # warm the database's cache; not counted
            run_child(variant, node.reader_url, sql[variant])
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for i in range(ctx.config.indb_repeats):
            order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                runs[variant].append(run_child(variant, node.reader_url, sql[variant]))
        out: Row = {"cohort_rows": rows, "sql": COHORT_SQL, "repeats": ctx.config.indb_repeats}
        for variant in VARIANTS:
            out[variant] = {
                "seconds": summary([r["seconds"] for r in runs[variant]], 4),
                "peak_rss_mb": summary([r["peak_rss_kb"] / 1024 for r in runs[variant]], 1),
                "rss_after_imports_mb": summary([r["rss_after_imports_kb"] / 1024 for r in runs[variant]], 1),
            }
        out["speedup"] = ratio(out["fetchall"]["seconds"]["median"], out["pipeline"]["seconds"]["median"])
        out["figures_agree"] = agree(runs["pipeline"][0]["figures"], runs["fetchall"][0]["figures"])
        out["person_count"] = runs["pipeline"][0]["figures"]["person_count"]
        ctx.log(
            f"indb {rows:,} rows: pipeline {out['pipeline']['seconds']['median']:.3f} s, "
            f"fetch-all {out['fetchall']['seconds']['median']:.3f} s"
        )
        return out

    return Unit(NAME, f"{rows:,} cohort rows", StackNeed(1, rows), run)


def plan(config: Config) -> Plan:
    return Plan([_unit(rows) for rows in config.indb_rows])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return {"rows": rows}


def print_table(summary_: dict[str, Any]) -> None:
    """The issue-3 read-out: time and peak worker memory of both variants per cohort size."""
    head = ("cohort rows", "variant", "median s", "p95 s", "peak RSS MB", "RSS after imports MB")
    print("{:>12} {:<10} {:>9} {:>8} {:>12} {:>21}".format(*head))
    for row in summary_.get("rows", []):
        for variant in VARIANTS:
            v = row[variant]
            cells = (
                f"{row['cohort_rows']:,}",
                variant,
                f"{v['seconds']['median']:.3f}",
                f"{v['seconds']['p95']:.3f}",
                f"{v['peak_rss_mb']['median']:.1f}",
                f"{v['rss_after_imports_mb']['median']:.1f}",
            )
            print("{:>12} {:<10} {:>9} {:>8} {:>12} {:>21}".format(*cells))
        print(
            f"{'':>12} fetch-all / in-database time: {row['speedup']}x; same figures: {row['figures_agree']}"
        )
    sys.stdout.flush()
