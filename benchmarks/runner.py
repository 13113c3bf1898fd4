"""Run a set of suites: plan their units, order them by the stack they need, run, collect, judge.

A unit that fails (a stack that cannot start, a query that errors) is recorded with a one-line reason and
the run carries on, so one heavy configuration (32 trusts on a small machine) cannot cost the others.
Every stack is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import (
    machine,
    suite_dispatch,
    suite_federation,
    suite_flower,
    suite_indb,
    suite_privacy,
    suite_scale,
    suite_startup,
    suite_throughput,
    targets,
)
from benchmarks.config import Config
from benchmarks.stacks import Log, StackPool
from benchmarks.suite import Context, Plan, Row
from omop.errors import first_line

MODULES: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        suite_startup,
        suite_scale,
        suite_dispatch,
        suite_throughput,
        suite_federation,
        suite_indb,
        suite_flower,
        suite_privacy,
    )
}


def _described(exc: BaseException) -> str:
    """``TypeName: first line``: in a benchmark report the kind of failure matters as much as its text."""
    name, text = type(exc).__name__, first_line(exc)
    return name if text == name else f"{name}: {text}"


def run(config: Config, suites: list[str], log: Log, workdir: Path | None = None) -> dict[str, Any]:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    description = machine.describe()
    plans: dict[str, Plan] = {}
    for name in suites:
        try:
            plans[name] = MODULES[name].plan(config)
        except Exception as exc:
            plans[name] = Plan([], skipped=f"could not plan: {_described(exc)}")
    units = sorted((u for p in plans.values() for u in p.units), key=lambda u: u.sort_key())
    rows: dict[str, list[Row]] = {name: [] for name in suites}
    errors: dict[str, list[dict[str, str]]] = {name: [] for name in suites}
    with tempfile.TemporaryDirectory(prefix="omopfed-bench-") as tmp:
        root = workdir or Path(tmp)
        pool = StackPool(root, log)
        ctx = Context(config=config, log=log, workdir=root)
        try:
            for unit in units:
                log(f"{unit.suite}: {unit.label}")
                try:
                    stack = pool.get(unit.need.trusts, unit.need.persons) if unit.need else None
                    rows[unit.suite].append(unit.run(ctx, stack))
                except Exception as exc:
                    log(f"{unit.suite} ({unit.label}) failed: {_described(exc)}")
                    errors[unit.suite].append({"unit": unit.label, "error": _described(exc)})
        finally:
            pool.close()
    results: dict[str, Any] = {
        "schema": 1,
        "mode": config.mode,
        "started_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "machine": {**description, "load_average_end": machine.load_average()},
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()},
        "suites": {},
        "stacks_started": pool.started,
    }
    for name in suites:
        plan = plans[name]
        if plan.skipped is not None:
            results["suites"][name] = {"status": "skipped", "reason": plan.skipped}
            continue
        data = MODULES[name].summarize(config, rows[name]) if rows[name] else {}
        status = "ok" if not errors[name] else ("partial" if rows[name] else "error")
        entry: dict[str, Any] = {"status": status, "data": data}
        if errors[name]:
            entry["errors"] = errors[name]
            entry["reason"] = errors[name][0]["error"]
        results["suites"][name] = entry
    results["targets"] = targets.evaluate(results)
    return results
