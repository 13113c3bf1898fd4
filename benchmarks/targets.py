"""The issue's performance targets, judged against a run's results: met, missed or not measured.

Pure functions over the results dictionary, so the judgement is the same whether it is made right after a
run or later from a stored JSON file.
"""

from __future__ import annotations

from typing import Any

MET, MISSED, NOT_MEASURED = "met", "missed", "not measured"

DISPATCH_P50_MS = 5.0
FEDERATION_RATIO = 1.25
FEDERATION_MIN_PERSONS = 100_000
INDB_SPEEDUP = 20.0
INDB_ROWS = 1_000_000
FLAT_MEMORY_TOLERANCE = 1.10  # pipeline peak RSS at 1M rows within 10 % of the smallest size's
SCALE_TRUSTS = 32
SCALE_MS = 1000.0
FLOWER_SECONDS = 0.5


def _target(name: str, goal: str, measured: str, status: str) -> dict[str, str]:
    return {"target": name, "goal": goal, "measured": measured, "status": status}


def _suite(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    suite = results.get("suites", {}).get(name)
    if not suite or suite.get("status") in ("skipped", "error", "not run"):
        return None
    data: dict[str, Any] = suite.get("data") or {}
    return data


def _why_not(results: dict[str, Any], name: str) -> str:
    suite = results.get("suites", {}).get(name)
    if not suite:
        return "suite not run"
    return str(suite.get("reason") or suite.get("status"))


def dispatch(results: dict[str, Any]) -> dict[str, str]:
    name, goal = "Dispatch: submit → trust worker starts the task, p50", f"≤ {DISPATCH_P50_MS:g} ms"
    data = _suite(results, "dispatch")
    start = (data or {}).get("ms", {}).get("start", {})
    if not start.get("n"):
        return _target(name, goal, _why_not(results, "dispatch"), NOT_MEASURED)
    p50 = start["median"]
    return _target(
        name, goal, f"{p50:.1f} ms (p95 {start['p95']:.1f} ms)", MET if p50 <= DISPATCH_P50_MS else MISSED
    )


def federation(results: dict[str, Any]) -> dict[str, str]:
    name = "Federation overhead at ≥ 100k persons per trust (end to end / slowest trust's direct SQL)"
    goal = f"≤ {FEDERATION_RATIO:g}×"
    data = _suite(results, "federation")
    rows = [r for r in (data or {}).get("rows", []) if r["persons_per_trust"] >= FEDERATION_MIN_PERSONS]
    if not rows:
        return _target(
            name, goal, _why_not(results, "federation") if not data else "no run at ≥ 100k", NOT_MEASURED
        )
    parts, ok = [], True
    for kind, label in (("in_process", "in-process"), ("whole_command", "whole command")):
        values = [r["ratio"][kind] for r in rows if r["ratio"].get(kind) is not None]
        if values:
            parts.append(f"{label} {min(values):.2f}–{max(values):.2f}×")
            ok = ok and max(values) <= FEDERATION_RATIO
    return _target(name, goal, "; ".join(parts), MET if ok and parts else MISSED)


def indb(results: dict[str, Any]) -> dict[str, str]:
    name = "In-database aggregation vs fetch-all at 1M cohort rows, flat worker memory"
    goal = f"≥ {INDB_SPEEDUP:g}× faster, flat memory"
    data = _suite(results, "indb")
    rows = sorted((data or {}).get("rows", []), key=lambda r: r["cohort_rows"])
    if not rows:
        return _target(name, goal, _why_not(results, "indb"), NOT_MEASURED)
    big = rows[-1]
    speedup = big.get("speedup")
    text = f"{speedup}× at {big['cohort_rows']:,} rows"
    peaks = [r["pipeline"]["peak_rss_mb"]["median"] for r in rows]
    flat = peaks[-1] <= peaks[0] * FLAT_MEMORY_TOLERANCE
    text += (
        f"; pipeline peak RSS {peaks[0]:.0f} → {peaks[-1]:.0f} MB"
        if len(rows) > 1
        else f"; pipeline peak RSS {peaks[0]:.0f} MB"
    )
    if big["cohort_rows"] < INDB_ROWS:
        return _target(name, goal, text + " (1M not measured in this mode)", NOT_MEASURED)
    met = speedup is not None and speedup >= INDB_SPEEDUP and flat
    return _target(name, goal, text, MET if met else MISSED)


def scale(results: dict[str, Any]) -> dict[str, str]:
    name, goal = f"{SCALE_TRUSTS} trusts pooled (median)", f"≤ {SCALE_MS / 1000:g} s"
    data = _suite(results, "scale")
    rows = (data or {}).get("rows", [])
    if not rows:
        return _target(name, goal, _why_not(results, "scale"), NOT_MEASURED)
    row = next((r for r in rows if r["trusts"] == SCALE_TRUSTS), None)
    if row is None:
        biggest = max(rows, key=lambda r: r["trusts"])
        return _target(
            name,
            goal,
            f"largest run: {biggest['trusts']} trusts in {biggest['pooled_ms']['median']:.0f} ms",
            NOT_MEASURED,
        )
    pooled = row["pooled_ms"]["median"]
    return _target(name, goal, f"{pooled:.0f} ms", MET if pooled <= SCALE_MS else MISSED)


def flower(results: dict[str, Any]) -> dict[str, str]:
    name, goal = "The Flower job, whole command (mean)", f"≤ {FLOWER_SECONDS:g} s"
    data = _suite(results, "flower")
    rows = (data or {}).get("rows", [])
    if not rows:
        return _target(name, goal, _why_not(results, "flower"), NOT_MEASURED)
    means = {r["trusts"]: r["wall_seconds"]["mean"] for r in rows}
    text = ", ".join(f"{n} trusts {m:.2f} s" for n, m in sorted(means.items()))
    return _target(name, goal, text, MET if max(means.values()) <= FLOWER_SECONDS else MISSED)


def evaluate(results: dict[str, Any]) -> list[dict[str, str]]:
    return [dispatch(results), federation(results), indb(results), scale(results), flower(results)]
