"""Pooling released trust answers into the federated result, with the disclosure rules applied again.

Each trust already releases only cells that are 0 or at least T, but a sum across trusts can still be
re-identifying when labels differ (one trust's ``Other`` next to another's ``90+``), and FLIP never
thresholds the pooled total at all. So the pooled figures go through the same ``omop.disclosure`` rules
as a trust's own: the hub can only ever publish less than the trusts released, never more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omop.demographics import AGE_BANDS, SEX_LABELS, in_order
from omop.disclosure import protect_distribution

ANSWERED = ("released", "suppressed")


def add_counts(tables: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for table in tables:
        total.update(table or {})
    return dict(total)


def pool_released(results: Sequence[Mapping[str, Any]], threshold: int) -> dict[str, Any]:
    """The federated figures from the released trust results (other statuses contribute nothing).

    Returns ``person_count`` (None when the pooled cohort is below the threshold or nothing was released),
    ``sex`` and ``age`` (label → persons, protected), ``trusts_released`` (how many trusts contributed).
    """
    released = [r for r in results if r.get("status") == "released"]
    total = sum(int(r.get("person_count") or 0) for r in released)
    if not released or total < threshold:
        return {"person_count": None, "sex": {}, "age": {}, "trusts_released": len(released)}
    sex = protect_distribution(add_counts(r.get("sex") for r in released), threshold)
    age = protect_distribution(add_counts(r.get("age") for r in released), threshold)
    return {
        "person_count": total,
        "sex": in_order(sex, SEX_LABELS),
        "age": in_order(age, AGE_BANDS),
        "trusts_released": len(released),
    }


def overall_status(trust_statuses: Iterable[str]) -> str:
    """``complete``: every trust answered (released or suppressed); ``failed``: none did; else ``partial``."""
    statuses = list(trust_statuses)
    answered = sum(1 for s in statuses if s in ANSWERED)
    if statuses and answered == len(statuses):
        return "complete"
    return "partial" if answered else "failed"
