"""Pooling the trusts' released numeric statistics into federated mean, sd, histogram and quantiles.

Pure functions over the ``TrustResult.numeric`` dicts of the trusts that released (see
``omop.numeric_disclosure`` for their shape). Maths (details in ``docs/numeric-statistics.md``):

* **Mean and variance** combine exactly from per-trust ``(n, mean, M2)`` with the parallel formula of
  Chan, Golub and LeVeque: for two parts ``A`` and ``B`` with ``delta = mean_B - mean_A``,
  ``n = n_A + n_B``, ``mean = mean_A + delta * n_B / n`` and ``M2 = M2_A + M2_B + delta^2 * n_A * n_B / n``.
  It never subtracts two large sums of squares, so it stays accurate when the mean is large compared to
  the spread. The sample standard deviation is ``sqrt(M2 / (n - 1))``.
* **Histograms**: each trust merged small bins with different neighbours, so the pooled cells are the
  finest partition of the shared grid into which every trust's cells fit (a cut between two bins survives
  only if every contributing trust cut there), per-trust counts are added on it, and the cell rule is
  applied again (``omop.numeric_disclosure.merge_cells``).
* **Quantiles** (q1, median, q3) are interpolated linearly inside the pooled, protected histogram (the
  grouped-data formula ``L + (p*n - F) / f * w``). The open-ended edge cells are treated as if they ended
  at the grid's ``lower`` / ``upper``: a quantile in an edge cell is clamped into the grid's range.

The pooled figures are sums of released figures; the hub still re-checks them: a pooled column with fewer
than T persons is withheld.

Noisy (dp) trusts release ``n`` and ``mean``/``m2`` derived from noisy, clamped sums, and histogram cells
that each carry their own noise (so they need not add up to ``n``). They pool the same way; what differs
is the uncertainty: ``n_margin`` and ``mean_margin`` are 95 % half-widths from the trusts' stated noise
scales (delta method for the ratio ``sum / n``), ``None`` when every contributing trust was exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omop.differential_privacy import discrete_laplace_variance, laplace_variance
from omop.disclosure import MIN_THRESHOLD
from omop.numeric_disclosure import (
    Cell,
    RejectedColumn,
    ReleasedColumn,
    check_released_column,
    merge_cells,
)
from omop.numeric_spec import HistogramSpec
from omop.states import ColumnStatus, PrivacyMode

QUANTILES: tuple[tuple[str, float], ...] = (("q1", 0.25), ("median", 0.5), ("q3", 0.75))

POOLED_SUPPRESSED_DETAIL = "too few persons with a value across the trusts that released this column"


@dataclass(frozen=True)
class Moments:
    """Count, mean and centred sum of squares of a set of values: everything exact pooling needs."""

    n: int
    mean: float
    m2: float

    def combine(self, other: Moments) -> Moments:
        """The moments of the union of two disjoint sets (Chan et al.'s parallel update)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2)

    @property
    def sd(self) -> float | None:
        """Sample standard deviation (``None`` below two values)."""
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1)) if self.n > 1 else None


def pool_moments(parts: Sequence[Moments]) -> Moments:
    """Fold :meth:`Moments.combine` over ``parts`` (order does not matter beyond rounding)."""
    total = Moments(0, 0.0, 0.0)
    for part in parts:
        total = total.combine(part)
    return total


def common_cells(partitions: Sequence[Sequence[Cell]], bins: int) -> list[Cell]:
    """Add per-trust cell counts on the finest partition of ``0..bins-1`` every trust's cells fit into.

    A cut after bin ``k`` is kept only if it is a cell boundary in every partition, so each pooled cell is
    a union of whole cells of each trust and the per-trust counts can simply be added.
    """
    cuts = set(range(bins - 1))
    for cells in partitions:
        cuts &= {last for _, last, _ in cells[:-1]}
    bounds = sorted(cuts)
    pooled: list[Cell] = []
    first = 0
    for last in [*bounds, bins - 1]:
        pooled.append((first, last, 0))
        first = last + 1
    ends = [c[1] for c in pooled]
    counts = [0] * len(pooled)
    for cells in partitions:
        j = 0
        for _, last, count in cells:
            while ends[j] < last:
                j += 1
            counts[j] += count
    return [(f, last, counts[i]) for i, (f, last, _) in enumerate(pooled)]


def histogram_json(spec: HistogramSpec, cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """The output form: one ``{lower, upper, count}`` per cell, ``None`` for the open ends."""
    out = []
    for first, last, count in cells:
        lower, upper = spec.cell_bounds(first, last)
        out.append({"lower": lower, "upper": upper, "count": count})
    return out


def quantiles(spec: HistogramSpec, cells: Sequence[Cell]) -> dict[str, float] | None:
    """q1, median and q3 by linear interpolation inside ``cells`` (open ends clamped to the grid range).

    For probability ``p`` the target rank is ``p * n``; in the cell where the running count reaches it,
    the value is ``lower + (target - before) / count * (upper - lower)`` with the cell's nominal bounds.
    ``None`` when the histogram is empty.
    """
    total = sum(c[2] for c in cells)
    if total <= 0:
        return None
    result: dict[str, float] = {}
    for name, p in QUANTILES:
        target = p * total
        before = 0
        for first, last, count in cells:
            if count > 0 and before + count >= target:
                lower, upper = spec.nominal_bounds(first, last)
                result[name] = lower + (target - before) / count * (upper - lower)
                break
            before += count
    return result


def _withheld(status: str, trusts: int, **extra: Any) -> dict[str, Any]:
    return {"status": status, "n": None, "mean": None, "sd": None, "trusts": trusts, **extra}


def _mean_noise(
    name: str, statements: Sequence[Mapping[str, Any] | None], moments: Moments
) -> tuple[float | None, float | None]:
    """95 % half-widths of the pooled ``n`` and ``mean`` from the dp trusts' noise (None: no noise)."""
    var_n = 0.0
    var_mean_numerator = 0.0
    for privacy in statements:
        if not privacy or privacy.get("mode") != PrivacyMode.DP:
            continue
        scales = privacy.get("scales") or {}
        bounds = (privacy.get("bounds") or {}).get(name)
        scale_n, scale_sum = scales.get(f"numeric.{name}.n"), scales.get(f"numeric.{name}.sum")
        if not isinstance(scale_n, int | float) or not isinstance(scale_sum, int | float) or not bounds:
            continue
        mid = (float(bounds[0]) + float(bounds[1])) / 2
        v_n = discrete_laplace_variance(float(scale_n))
        var_n += v_n
        var_mean_numerator += laplace_variance(float(scale_sum)) + (moments.mean - mid) ** 2 * v_n
    if var_n <= 0 or moments.n <= 0:
        return None, None
    z = 1.959963984540054
    return round(z * math.sqrt(var_n), 2), z * math.sqrt(var_mean_numerator) / moments.n


def pool_column(
    entries: Sequence[Mapping[str, Any]],
    threshold: int,
    histogram: HistogramSpec | None = None,
    privacy: Sequence[Mapping[str, Any] | None] | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Pool one column from the per-trust entries (each a ``TrustResult.numeric[column]``).

    Malformed entries (that break the release contract) and released entries whose histogram does not
    match the requested grid are left out, so the pooled histogram always adds up to the pooled ``n``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < MIN_THRESHOLD:
        raise ValueError(f"threshold must be an integer >= {MIN_THRESHOLD}, got {threshold!r}")
    released: list[ReleasedColumn] = []
    released_privacy: list[Mapping[str, Any] | None] = []
    rejected: list[RejectedColumn] = []
    statements = list(privacy) if privacy is not None else [None] * len(entries)
    for entry, statement in zip(entries, statements, strict=True):
        try:
            # a noisy trust's histogram cells carry their own noise and need not add up to its n
            column = check_released_column(entry, threshold, histogram_adds_up=False)
        except ValueError:
            continue
        if isinstance(column, ReleasedColumn) and _matches_grid(column, histogram):
            released.append(column)
            released_privacy.append(statement)
        elif isinstance(column, RejectedColumn):
            rejected.append(column)
    moments = pool_moments([Moments(c.n, c.mean, c.m2) for c in released])
    if moments.n < threshold:
        if not released and rejected:
            first = rejected[0]
            return _withheld(ColumnStatus.REJECTED, 0, reason_code=first.reason_code, detail=first.detail)
        return _withheld(ColumnStatus.SUPPRESSED, len(released), detail=POOLED_SUPPRESSED_DETAIL)
    n_margin, mean_margin = _mean_noise(name, released_privacy, moments)
    pooled: dict[str, Any] = {
        "status": ColumnStatus.RELEASED,
        "n": moments.n,
        "mean": moments.mean,
        "sd": moments.sd,
        "trusts": len(released),
        "n_margin": n_margin,
        "mean_margin": mean_margin,
    }
    if histogram is not None:
        partitions = [c.histogram.as_cells() for c in released if c.histogram is not None]
        cells = merge_cells(common_cells(partitions, histogram.bins), threshold)
        pooled["histogram"] = histogram_json(histogram, cells)
        pooled["quantiles"] = quantiles(histogram, cells)
    return pooled


def _matches_grid(column: ReleasedColumn, histogram: HistogramSpec | None) -> bool:
    if histogram is None:
        return True
    return column.histogram is not None and column.histogram.grid == histogram


def pool_numeric(
    per_trust: Sequence[Mapping[str, Any] | None],
    threshold: int,
    histograms: Mapping[str, HistogramSpec] | None = None,
    privacy: Sequence[Mapping[str, Any] | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The federated numeric result: column → pooled figures (the JSON under ``federated.numeric``).

    ``per_trust`` holds the ``numeric`` dict of every trust that released (``None`` entries are skipped).
    Columns appear in the order they are first seen. A released column::

        {"status": "released", "n": 1234, "mean": 27.1, "sd": 5.02, "trusts": 3,
         "histogram": [{"lower": None, "upper": 18.0, "count": 40}, ...],     # when requested
         "quantiles": {"q1": 23.6, "median": 26.9, "q3": 30.4}}               # when requested

    A withheld one: ``{"status": "suppressed" | "rejected", "n": None, "mean": None, "sd": None,
    "trusts": k, "detail": ..., ("reason_code": ...)}``.
    """
    columns: list[str] = []
    for numeric in per_trust:
        for name in numeric or {}:
            if name not in columns:
                columns.append(name)
    grids = histograms or {}
    statements = list(privacy) if privacy is not None else [None] * len(per_trust)
    return {
        name: pool_column(
            [numeric[name] for numeric in per_trust if numeric and name in numeric],
            threshold,
            grids.get(name),
            [st for numeric, st in zip(per_trust, statements, strict=True) if numeric and name in numeric],
            name,
        )
        for name in columns
    }
