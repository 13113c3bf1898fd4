"""The Flower job: mean and sd of six measurements over 2 and 5 trusts, timed as a whole command.

``omopfed hub submit --sql-file omopfed/examples/flower-six-features.sql --numeric <six columns> --json``,
run as a subprocess exactly as a researcher would, against trusts of 100,000 synthetic persons. The
command's wall time is split using the report it prints: ``created_at`` → ``finalized_at`` is the
federated work; the rest is the command's own start-up, settings, submission and output.

Skipped, with the reason recorded, when the installed ``omopfed hub submit`` has no ``--numeric`` option.
"""

from __future__ import annotations

from datetime import datetime
from statistics import fmean, median
from typing import Any

from benchmarks.commands import EXAMPLES, omopfed_command, run_timed
from benchmarks.config import Config
from benchmarks.stacks import Stack
from benchmarks.stats import summary
from benchmarks.suite import Context, Plan, Row, StackNeed, Unit, ms, need_stack
from benchmarks.suite_federation import whole_command

NAME = "flower"
SQL_FILE = EXAMPLES / "flower-six-features.sql"
FEATURES = ("age", "bmi", "systolic_bp", "diastolic_bp", "ldl_cholesterol", "hba1c")
UNAVAILABLE = "numeric statistics not available"


def unavailable_reason() -> str | None:
    """None when ``omopfed hub submit`` offers ``--numeric``, else why the suite is skipped."""
    timed = run_timed([*omopfed_command(), "hub", "submit", "--help"], timeout=120)
    if timed.returncode != 0:
        return f"{UNAVAILABLE} (omopfed hub submit --help exited {timed.returncode})"
    if "--numeric" not in timed.stdout + timed.stderr:
        return f"{UNAVAILABLE} (omopfed hub submit has no --numeric option)"
    if not SQL_FILE.exists():
        return f"{UNAVAILABLE} ({SQL_FILE.name} is missing)"
    return None


def pooled_features(report: dict[str, Any]) -> dict[str, Any]:
    numeric = (report.get("federated") or {}).get("numeric") or {}
    return {f: {k: (numeric.get(f) or {}).get(k) for k in ("status", "n", "mean", "sd")} for f in FEATURES}


def federated_seconds(report: dict[str, Any]) -> float | None:
    created, finalized = report.get("created_at"), report.get("finalized_at")
    if not created or not finalized:
        return None
    return (datetime.fromisoformat(finalized) - datetime.fromisoformat(created)).total_seconds()


def _run(ctx: Context, stack: Stack | None) -> Row:
    st = need_stack(stack)
    extra = ["--numeric", ",".join(FEATURES)]
    rows = []
    for n in ctx.config.flower_trusts:
        ids = st.trust_ids(n)
        whole_command(st, SQL_FILE, ids, extra)  # warm-up
        runs = [whole_command(st, SQL_FILE, ids, extra) for _ in range(ctx.config.flower_repeats)]
        wall = [seconds for seconds, _ in runs]
        federated = [s for _, r in runs if (s := federated_seconds(r)) is not None]
        last = runs[-1][1]
        ctx.log(f"flower {n} trusts: {fmean(wall):.3f} s mean whole command")
        rows.append(
            {
                "trusts": n,
                "persons_per_trust": st.persons,
                "repeats": len(runs),
                "status": last.get("status"),
                "wall_seconds": summary(wall, 4),  # mean and sd: what the report and the targets read
                "federated_ms_median": round(ms(median(federated)), 1) if federated else None,
                "rest_of_command_ms_median": (
                    round(ms(median(wall) - median(federated)), 1) if federated else None
                ),
                "pooled": pooled_features(last),
            }
        )
    return {"rows": rows}


def plan(config: Config) -> Plan:
    reason = unavailable_reason()
    if reason is not None:
        return Plan([], skipped=reason)
    need = StackNeed(max(config.flower_trusts), config.flower_persons)
    return Plan([Unit(NAME, f"{max(config.flower_trusts)} trusts", need, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
