"""Writing a run's results: the JSON file under ``benchmarks/results/`` and the tables in BENCHMARKS.md.

BENCHMARKS.md is hand-written except between ``<!-- bench:<mode>:start -->`` and
``<!-- bench:<mode>:end -->``, which the latest complete run of that mode regenerates; a quick run
therefore never erases the full run's tables, or the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def results_path(directory: Path, when: datetime) -> Path:
    """``<date>.json``, or ``<date>-2.json`` and so on when that day already has a run: never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = when.strftime("%Y-%m-%d")
    path, n = directory / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.json"
    return path


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _machine(results: Results) -> str:
    m = results["machine"]
    code = m.get("code") or {}
    pk = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
    return "\n".join(
        [
            f"- **Run**: {results['started_at']} ({results['mode']} mode, {results['duration_s']:.0f} s, "
            f"results file `{results.get('results_file', '?')}`)",
            f"- **Machine**: {m['cpu']}, {m['cores']} usable cores, {m['memory_gib']} GiB; {m['os']}",
            f"- **Load average** (1, 5, 15 min) at start {m.get('load_average_start')}, "
            f"at end {m.get('load_average_end')}",
            f"- **Software**: Python {m['python']}; {pk}",
            f"- **Code**: commit {code.get('commit') or 'unknown'}"
            + (" with uncommitted changes" if code.get("uncommitted_changes") else ""),
        ]
    )


def _targets(results: Results) -> str:
    rows = [[t["target"], t["goal"], t["measured"], f"**{t['status']}**"] for t in results.get("targets", [])]
    return table(["target", "goal", "measured", "status"], rows)


def _dispatch(data: dict[str, Any]) -> str:
    labels = [
        ("submit_call", "`submit()` call (pre-check, sign, record, publish)"),
        ("start", "submit → trust worker starts the task (each trust)"),
        ("last_start", "submit → last trust starts"),
        ("trust_run", "trust: task claimed → answer sealed (verify, SQL, disclosure, seal, audit)"),
        (
            "reply",
            "answer sealed → stored at the hub (audit entry, publish, reducer verifies, decrypts, stores)",
        ),
        ("pool", "last answer stored → pooled result written"),
        ("pooled", "**submit → pooled result** (hub store)"),
        (
            "observed",
            f"submit → pooled result seen by the caller (polling every {data.get('poll_ms', 5):g} ms)",
        ),
    ]
    s = data["ms"]
    rows = [[label, s[k].get("median"), s[k].get("p95"), s[k].get("n")] for k, label in labels if k in s]
    head = (
        f"{data['queries']} sequential queries (`{data['sql']}`) to {data['trusts']} trusts of "
        f"{data['persons_per_trust']} persons; {data['not_complete']} not complete.\n\n"
    )
    out = head + table(["interval", "median ms", "p95 ms", "samples"], rows)
    return out + _submit_profile(data.get("submit_profile"))


def _submit_profile(prof: dict[str, Any] | None) -> str:
    if not prof:
        return ""
    parts = ", ".join(f"{k} {v:.2f}" for k, v in prof["parts_ms"].items())
    return (
        f"\n\nInside `submit()` to {prof['trusts']} trust(s), {prof['submit_ms']:.1f} ms per call over "
        f"{prof['calls']} more queries, each part timed by a wrapper (ms per call): {parts}."
    )


def _throughput(data: dict[str, Any]) -> str:
    c = data["checks"]
    row = [
        data["queries"],
        data["trusts"],
        data["queue_seconds"],
        data["elapsed_seconds"],
        data["queries_per_second"],
        data["answers_per_second"],
        data["lost"],
        data["duplicated"],
    ]
    checks = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items())
    return (
        table(
            [
                "queries",
                "trusts",
                "queued in s",
                "all pooled in s",
                "queries/s",
                "trust answers/s",
                "lost",
                "duplicated",
            ],
            [row],
        )
        + f"\n\nChecks: {checks}."
    )


def _scale(data: dict[str, Any]) -> str:
    rows = [
        [
            r["trusts"],
            r["pooled_ms"]["median"],
            r["pooled_ms"]["p95"],
            r["observed_ms"]["median"],
            r["submit_call_ms"]["median"],
            r.get("last_start_ms", {}).get("median"),
            r.get("answer_gap_ms", {}).get("median"),
            r["not_complete"],
        ]
        for r in data["rows"]
    ]
    mem = data["memory"]
    note = (
        f"\n\nOne stack of {mem['trusts']} trusts × {data['persons_per_trust']} persons, started in "
        f"{data['stack_up_seconds']:.0f} s; each row addresses the first N trusts. Memory with the stack up: "
        f"worker RSS {mem['worker_rss_mb_median']} MB each ({mem['workers_rss_mb_total']} MB total), "
        f"PostgreSQL servers {mem['postgres_pss_mb_total']} MB (PSS), reducer {mem['reducer_rss_mb']} MB; "
        f"{mem['machine_available_mb']:,} of {mem['machine_total_mb']:,} MB still available."
    )
    header = [
        "trusts",
        "pooled median ms",
        "pooled p95 ms",
        "seen by caller ms",
        "submit() ms",
        "submit → last trust starts ms",
        "gap between stored answers ms",
        "not complete",
    ]
    return table(header, rows) + note + _submit_profile(data.get("submit_profile"))


def _federation(data: dict[str, Any]) -> str:
    rows = []
    for r in data["rows"]:
        m = r["ms"]
        rows.append(
            [
                r["persons_per_trust"],
                r["query"],
                m["direct_slowest_median"],
                m["direct_concurrent"]["median"],
                m["trust_pipeline_slowest"]["median"],
                m["in_process_pooled_in_store"]["median"],
                f"{m['in_process']['median']:,.1f} ({m['in_process']['p95']:,.1f})",
                _x(r["ratio"]["in_process"]),
                _x(r["ratio"].get("in_process_vs_concurrent")),
                f"{m['whole_command']['median']:,.1f} ({m['whole_command']['p95']:,.1f})",
                _x(r["ratio"]["whole_command"]),
                ("yes" if r["person_count_direct"] == r["person_count_pooled"] else "NO")
                + ("" if r["statuses"] == ["complete"] else f" ({', '.join(r['statuses'])})"),
            ]
        )
    header = [
        "persons/trust",
        "query",
        "slowest trust direct ms",
        "all trusts at once ms",
        "trust pipeline ms",
        "pooled in store ms",
        "in-process ms (p95)",
        "ratio",
        "in-process / all at once",
        "whole command ms (p95)",
        "ratio",
        "pooled count = direct",
    ]
    return (
        table(header, rows)
        + "\n\nMedians over the repeats. *Pooled in store*: when the reducer wrote the pooled result. "
        "*In-process*: when `wait_for()`, polling every 20 ms, returned it to the caller. *Ratio*: the "
        "end-to-end median over the slowest trust's direct median (the target's definition). *In-process / "
        "all at once* divides instead by the time the trusts' databases need when they all run the "
        "statement at the same moment, as they do in a federated query, on this machine."
    )


def _indb(data: dict[str, Any]) -> str:
    rows = []
    for r in data["rows"]:
        for variant, label in (
            ("pipeline", "in-database (trust pipeline)"),
            ("fetchall", "fetch-all + Python"),
        ):
            v = r[variant]
            rows.append(
                [
                    r["cohort_rows"],
                    label,
                    v["seconds"]["median"],
                    v["seconds"]["p95"],
                    v["peak_rss_mb"]["median"],
                    v["rss_after_imports_mb"]["median"],
                    _x(r["speedup"]) if variant == "pipeline" else "",
                    "yes" if r["figures_agree"] else "NO",
                ]
            )
    header = [
        "cohort rows",
        "variant",
        "median s",
        "p95 s",
        "peak RSS MB",
        "RSS after imports MB",
        "fetch-all / in-db time",
        "same figures",
    ]
    return table(header, rows)


def _flower(data: dict[str, Any]) -> str:
    rows = []
    for r in data["rows"]:
        w = r["wall_seconds"]
        rows.append(
            [
                r["trusts"],
                r["persons_per_trust"],
                w["mean"],
                w["sd"],
                w["median"],
                w["p95"],
                r["federated_ms_median"],
                r["rest_of_command_ms_median"],
                r["status"],
            ]
        )
    out = table(
        [
            "trusts",
            "persons/trust",
            "mean s",
            "sd s",
            "median s",
            "p95 s",
            "federated part ms",
            "rest of command ms",
            "status",
        ],
        rows,
    )
    if data["rows"]:
        last = data["rows"][-1]
        feats = [
            [f, v.get("status"), v.get("n"), v.get("mean"), v.get("sd")] for f, v in last["pooled"].items()
        ]
        out += f"\n\nPooled figures ({last['trusts']} trusts):\n\n" + table(
            ["feature", "status", "n", "mean", "sd"], feats
        )
    return out


def _startup(data: dict[str, Any]) -> str:
    rows = [[c["command"], c["ms"]["median"], c["ms"]["p95"]] for c in data.get("commands", [])]
    out = table(["command", "median ms", "p95 ms"], rows)
    imports = data.get("imports_of_hub_submit") or {}
    if imports.get("top"):
        listing = ", ".join(f"`{i['package']}` {i['self_ms']:.0f}" for i in imports["top"])
        out += (
            "\n\nImports of `omopfed hub submit` (`python -X importtime`, one run): "
            f"{imports['total_ms']:.0f} ms in all; by package (ms): {listing}."
        )
    return out


def _privacy(data: dict[str, Any]) -> str:
    out = ""
    error = data.get("error") or {}
    if error.get("sizes"):
        rows = [
            [
                f"{r['persons_per_trust']:,} x {r['trusts']}",
                f"{100 * r['count_rel_error_median']:.2f} %",
                f"{100 * r['count_rel_error_p95']:.2f} %",
                f"{100 * r['count_coverage']:.0f} %",
                "" if r["mean_rel_error_median"] is None else f"{100 * r['mean_rel_error_median']:.2f} %",
                "" if r["mean_rel_error_p95"] is None else f"{100 * r['mean_rel_error_p95']:.2f} %",
                f"{100 * r['mean_coverage']:.0f} %",
            ]
            for r in error["sizes"]
        ]
        out += table(
            [
                "persons per trust x trusts",
                "pooled count: median rel. error",
                "p95",
                "inside ± (95 %)",
                "pooled mean: median rel. error",
                "p95",
                "inside ±",
            ],
            rows,
        )
        out += (
            f"\n\nDefault settings (epsilon 1 per query, BMI-like column clamped to 10..70), "
            f"{error['sizes'][0]['draws']} noisy releases per size, through the trusts' and the hub's code."
        )
    eunomia = data.get("eunomia") or {}
    if eunomia.get("cohorts"):
        rows = [
            [
                c["cohort"],
                f"{c['reference']:,}",
                c["reported"],
                c["margin"],
                "yes" if c["inside"] else "**no**",
            ]
            for c in eunomia["cohorts"]
        ]
        out += "\n\nEunomia GiBleed over three dp trusts:\n\n"
        out += table(["cohort", "reference", "reported", "± (95 %)", "inside"], rows)
    return out


SECTIONS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("dispatch", "Dispatch latency", _dispatch),
    ("federation", "Federation overhead", _federation),
    ("indb", "In-database aggregation vs fetch-all", _indb),
    ("scale", "Scale-out", _scale),
    ("throughput", "Throughput", _throughput),
    ("flower", "The Flower job (six numeric features)", _flower),
    ("startup", "Command start-up", _startup),
    ("privacy", "Differential privacy: error and intervals", _privacy),
)


def render(results: Results) -> str:
    parts = [_machine(results), "", "### Targets", "", _targets(results)]
    for key, title, render_suite in SECTIONS:
        suite = results["suites"].get(key)
        if suite is None:
            continue
        parts += ["", f"### {title}", ""]
        if suite["status"] == "skipped":
            parts.append(f"Skipped: {suite['reason']}.")
            continue
        if suite.get("data"):
            parts.append(render_suite(suite["data"]))
        for err in suite.get("errors", []):
            parts.append(f"\n**Failed** ({err['unit']}): {err['error']}")
    stacks = results.get("stacks_started", [])
    if stacks:
        parts += [
            "",
            "Stacks started: "
            + "; ".join(f"{s['trusts']} × {s['persons']:,} persons in {s['up_seconds']} s" for s in stacks)
            + ".",
        ]
    return "\n".join(parts) + "\n"


def markers(mode: str) -> tuple[str, str]:
    return f"<!-- bench:{mode}:start -->", f"<!-- bench:{mode}:end -->"


def update_markdown(path: Path, results: Results) -> None:
    """Replace this mode's generated block in ``path`` (appended with a heading if it has none)."""
    start, end = markers(results["mode"])
    block = f"{start}\n{render(results)}{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + f"\n\n## Latest {results['mode']} run\n\n{block}\n"
    path.write_text(text)
