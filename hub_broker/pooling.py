"""Pooling released trust answers into the federated result, with the disclosure rules applied again.

Each trust already releases only cells that are 0 or at least T, but a sum across trusts can still be
re-identifying when labels differ (one trust's ``Other`` next to another's ``90+``), and FLIP never
thresholds the pooled total at all. So the pooled figures go through the same ``omop.disclosure`` rules
as a trust's own: the hub can only ever publish less than the trusts released, never more.

Honest figures, not just safe ones:

* **Uncertainty.** A trust in dp mode states the noise scale of each figure group. Noise of different
  trusts is independent, so the variance of a pooled count is the sum of the trusts' noise variances, and
  ``margins`` gives the half-width of a 95 % interval for it (``omop.differential_privacy``); exact trusts
  add none. The interval covers the noise the trusts added, not sampling variation.
* **Which trusts are in each cell.** A trust that merged ``Male`` into ``Other`` adds its males to the
  pooled ``Other``, not to the pooled ``Male``. ``cells`` therefore names, for every pooled sex and age
  cell, the trusts whose own answers contributed to it (and its margin), so nobody reads the pooled
  ``Male`` as all the males of every trust.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omop.demographics import AGE_BANDS, SEX_LABELS, in_order
from omop.differential_privacy import discrete_laplace_variance, interval_half_width
from omop.disclosure import OTHER_LABEL, decide, protect_distribution
from omop.states import ANSWERED, PrivacyMode, QueryStatus, ResultStatus


def add_counts(tables: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for table in tables:
        total.update(table or {})
    return dict(total)


def noise_scale(result: Mapping[str, Any], group: str) -> float | None:
    """The noise scale a dp trust states for ``group``; ``None`` for exact answers."""
    privacy = result.get("privacy") or {}
    if privacy.get("mode") != PrivacyMode.DP:
        return None
    scale = (privacy.get("scales") or {}).get(group)
    return float(scale) if isinstance(scale, int | float) else None


def count_variance(result: Mapping[str, Any], group: str, cells: int = 1) -> float:
    """Noise variance of a released count made of ``cells`` noisy cells of ``group`` (0 when exact)."""
    scale = noise_scale(result, group)
    return 0.0 if scale is None else cells * discrete_laplace_variance(scale)


def margin(variance: float, scales: Sequence[float]) -> float | None:
    """95 % half-width for a pooled figure; ``None`` when no noise went into it (exact figures)."""
    if variance <= 0:
        return None
    return round(interval_half_width(variance, scales[0] if len(scales) == 1 else None), 2)


def _pool_table(
    released: Sequence[Mapping[str, Any]], table: str, labels: tuple[str, ...], threshold: int
) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """A pooled, protected distribution and, per released cell, its contributing trusts and margin."""
    # per label: which trusts released it under that label, and the noise variance it brings
    trusts: dict[str, list[str]] = {}
    variance: dict[str, float] = {}
    scales: dict[str, list[float]] = {}
    for result in released:
        cells = result.get(table) or {}
        merged_away = len(labels) - sum(1 for label in cells if label != OTHER_LABEL)
        for label in cells:
            trusts.setdefault(label, []).append(str(result.get("trust_id")))
            # a trust's Other holds every label it did not release on its own, each with its own noise
            width = max(1, merged_away) if label == OTHER_LABEL else 1
            variance[label] = variance.get(label, 0.0) + count_variance(result, table, width)
            scale = noise_scale(result, table)
            if scale is not None:
                scales.setdefault(label, []).append(scale)
    pooled = protect_distribution(add_counts(r.get(table) for r in released), threshold)
    detail: dict[str, dict[str, Any]] = {}
    kept = set(pooled) - {OTHER_LABEL}
    for label in pooled:
        members = [label] if label != OTHER_LABEL else [k for k in trusts if k not in kept]
        names = sorted({t for m in members for t in trusts.get(m, [])})
        var = sum(variance.get(m, 0.0) for m in members)
        detail[label] = {
            "trusts": names,
            "margin": margin(var, [s for m in members for s in scales.get(m, [])]),
        }
    ordered = in_order(pooled, labels)
    return ordered, {label: detail[label] for label in ordered}


def pool_released(results: Sequence[Mapping[str, Any]], threshold: int) -> dict[str, Any]:
    """The federated figures from the released trust results (other statuses contribute nothing).

    Returns ``person_count`` (None when the pooled cohort is below the threshold or nothing was released),
    ``sex`` and ``age`` (label → persons, protected), ``trusts_released`` (how many trusts contributed),
    ``margins`` (95 % half-width per pooled figure that carries noise: ``person_count``) and ``cells``
    (per sex and age cell: the contributing trusts and the cell's margin).
    """
    released = [r for r in results if r.get("status") == ResultStatus.RELEASED]
    total = sum(int(r.get("person_count") or 0) for r in released)
    if not released or not decide(total, threshold):
        return {"person_count": None, "sex": {}, "age": {}, "trusts_released": len(released)}
    sex, sex_cells = _pool_table(released, "sex", SEX_LABELS, threshold)
    age, age_cells = _pool_table(released, "age", AGE_BANDS, threshold)
    person_scales = [s for r in released if (s := noise_scale(r, "person_count")) is not None]
    person_variance = sum(count_variance(r, "person_count") for r in released)
    return {
        "person_count": total,
        "sex": sex,
        "age": age,
        "trusts_released": len(released),
        "margins": {"person_count": margin(person_variance, person_scales)},
        "cells": {"sex": sex_cells, "age": age_cells},
        "noisy_trusts": sorted(str(r.get("trust_id")) for r in released if noise_scale(r, "person_count")),
    }


def overall_status(trust_statuses: Iterable[str]) -> QueryStatus:
    """``complete``: every trust answered (released or suppressed); ``failed``: none did; else ``partial``."""
    statuses = list(trust_statuses)
    answered = sum(1 for s in statuses if s in ANSWERED)
    if statuses and answered == len(statuses):
        return QueryStatus.COMPLETE
    return QueryStatus.PARTIAL if answered else QueryStatus.FAILED
