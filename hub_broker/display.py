"""Terminal rendering of query progress and results (rich): tables and bar charts, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hub_broker.store import Query
from omop.states import PrivacyMode, QueryStatus, TrustStatus

#: The colour of every status shown: a trust's (or a numeric column's, the same words) and a query's.
STATUS_STYLE: dict[str, str] = {
    TrustStatus.PENDING: "yellow",
    TrustStatus.RELEASED: "green",
    TrustStatus.SUPPRESSED: "cyan",
    TrustStatus.REJECTED: "red",
    TrustStatus.ERROR: "red",
    TrustStatus.TIMEOUT: "magenta",
    QueryStatus.COMPLETE: "green",
    QueryStatus.PARTIAL: "yellow",
    QueryStatus.FAILED: "red",
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


def with_margin(value: float | int, margin: float | None, digits: int = 0) -> str:
    """``479 ± 7`` for a noisy figure (95 % half-width), ``479`` for an exact one."""
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return text if margin is None else f"{text} ± {margin:.{digits}f}"


def bar_chart(
    title: str,
    counts: Mapping[str, int],
    width: int = 40,
    cells: Mapping[str, Mapping[str, Any]] | None = None,
) -> Group:
    """A bar per label; ``cells`` (pooled figures) adds each bar's margin and contributing trusts."""
    lines = [Text(title, style="bold")]
    top = max(counts.values(), default=0)
    label_w = max((len(k) for k in counts), default=0)
    for label, n in counts.items():
        bar = "█" * (round(width * n / top) if top else 0)
        cell = (cells or {}).get(label) or {}
        text = with_margin(n, cell.get("margin"))
        if cell.get("trusts") is not None:
            text += f"  ({', '.join(cell['trusts'])})"
        lines.append(Text(f"  {label:<{label_w}} {bar} {text}"))
    if not counts:
        lines.append(Text("  (nothing released)", style="dim"))
    return Group(*lines)


def render_report(console: Console, report: Mapping[str, Any]) -> None:
    status = report["status"]
    console.print(
        Text.assemble("query ", (report["query_id"], "bold"), ": ", (status, STATUS_STYLE.get(status, "")))
    )
    table = Table("trust", "status", "persons", "privacy", "detail")
    for trust_id, entry in report["trusts"].items():
        count = entry.get("person_count")
        privacy = entry.get("privacy") or {}
        scale = (privacy.get("scales") or {}).get("person_count")
        own_margin = scale_margin(scale) if privacy.get("mode") == PrivacyMode.DP and scale else None
        table.add_row(
            trust_id,
            Text(entry["status"], style=STATUS_STYLE.get(entry["status"], "")),
            "" if count is None else with_margin(count, own_margin),
            _privacy_label(privacy),
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
    margins = fed.get("margins") or {}
    console.print(
        Text.assemble(
            "federated persons: ",
            (with_margin(fed["person_count"], margins.get("person_count")), "bold green"),
            f"  (threshold {report['threshold']}"
            + ("; ± is a 95 % interval for the noise" if margins.get("person_count") else "")
            + ")",
        )
    )
    cells = fed.get("cells") or {}
    console.print(bar_chart("sex (trusts in each cell)", fed.get("sex", {}), cells=cells.get("sex")))
    console.print(bar_chart("age (trusts in each cell)", fed.get("age", {}), cells=cells.get("age")))
    if "numeric" in fed:
        render_numeric(console, fed["numeric"])


def scale_margin(scale: float) -> float:
    """One trust's 95 % half-width for a figure with Laplace noise of this scale (``scale * ln 20``)."""
    from omop.differential_privacy import interval_half_width

    return interval_half_width(0.0, float(scale))


def _privacy_label(privacy: Mapping[str, Any]) -> str:
    if privacy.get("mode") == PrivacyMode.DP:
        label = str(PrivacyMode.DP)
        if privacy.get("epsilon") is not None:
            label += f" ε {privacy['epsilon']:g}"
        if privacy.get("budget_left") is not None:
            label += f", {privacy['budget_left']:g} left"
        return label
    return str(privacy.get("mode") or "")


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
            "" if col.get("n") is None else with_margin(col["n"], col.get("n_margin")),
            "" if col.get("mean") is None else with_margin(col["mean"], col.get("mean_margin"), 2),
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
