"""Terminal rendering of query progress and results (rich): tables and bar charts, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hub_broker.store import Query

STATUS_STYLE = {
    "pending": "yellow",
    "released": "green",
    "suppressed": "cyan",
    "rejected": "red",
    "error": "red",
    "timeout": "magenta",
    "complete": "green",
    "partial": "yellow",
    "failed": "red",
}


def progress_table(query: Query) -> Table:
    table = Table(title=f"query {query.query_id}", title_justify="left")
    table.add_column("trust")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for a in query.answers:
        style = STATUS_STYLE.get(a.status, "")
        table.add_row(a.trust_id, Text(a.status, style=style), a.detail or "")
    return table


def bar_chart(title: str, counts: Mapping[str, int], width: int = 40) -> Group:
    lines = [Text(title, style="bold")]
    top = max(counts.values(), default=0)
    label_w = max((len(k) for k in counts), default=0)
    for label, n in counts.items():
        bar = "█" * (round(width * n / top) if top else 0)
        lines.append(Text(f"  {label:<{label_w}} {bar} {n}"))
    if not counts:
        lines.append(Text("  (nothing released)", style="dim"))
    return Group(*lines)


def render_report(console: Console, report: Mapping[str, Any]) -> None:
    status = report["status"]
    console.print(
        Text.assemble("query ", (report["query_id"], "bold"), ": ", (status, STATUS_STYLE.get(status, "")))
    )
    table = Table("trust", "status", "persons", "detail")
    for trust_id, entry in report["trusts"].items():
        count = entry.get("person_count")
        table.add_row(
            trust_id,
            Text(entry["status"], style=STATUS_STYLE.get(entry["status"], "")),
            "" if count is None else str(count),
            entry.get("detail") or "",
        )
    console.print(table)
    fed = report["federated"]
    if fed.get("person_count") is None:
        console.print(
            f"federated: nothing released (pooled cohort below threshold {report['threshold']} "
            "or no trust released figures)"
        )
        return
    console.print(
        Text.assemble(
            "federated persons: ",
            (str(fed["person_count"]), "bold green"),
            f"  (threshold {report['threshold']})",
        )
    )
    console.print(bar_chart("sex", fed.get("sex", {})))
    console.print(bar_chart("age", fed.get("age", {})))
    if "numeric" in fed:
        render_numeric(console, fed["numeric"])


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _bin_label(cell: Mapping[str, Any]) -> str:
    lower, upper = cell.get("lower"), cell.get("upper")
    if lower is None:
        return f"< {upper:g}"
    if upper is None:
        return f">= {lower:g}"
    return f"{lower:g}-{upper:g}"


def render_numeric(console: Console, numeric: Mapping[str, Mapping[str, Any]]) -> None:
    """Pooled numeric statistics: one table row per column, then a terminal histogram where requested."""
    table = Table("column", "status", "n", "mean", "sd", "q1", "median", "q3", title="numeric (pooled)")
    for name, col in numeric.items():
        q = col.get("quantiles") or {}
        table.add_row(
            name,
            Text(col.get("status", ""), style=STATUS_STYLE.get(col.get("status", ""), "")),
            "" if col.get("n") is None else str(col["n"]),
            _fmt(col.get("mean")),
            _fmt(col.get("sd")),
            _fmt(q.get("q1")),
            _fmt(q.get("median")),
            _fmt(q.get("q3")),
        )
    console.print(table)
    for name, col in numeric.items():
        if col.get("histogram"):
            console.print(
                bar_chart(f"{name} histogram", {_bin_label(c): c["count"] for c in col["histogram"]})
            )
