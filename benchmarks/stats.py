"""Summary statistics for repeated measurements: pure functions over lists of floats.

Percentiles interpolate linearly between closest ranks (the same definition as numpy's default and
``statistics.quantiles(..., method="inclusive")``), so a p95 over 50 samples is not just the 48th value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ``values``, linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100 (got {p})")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of an empty sample")
    return math.fsum(values) / len(values)


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """n, median, p95, mean, sd, min and max of ``values``, rounded to ``digits`` decimals."""
    if not values:
        return {"n": 0}
    stats = {
        "median": median(values),
        "p95": percentile(values, 95),
        "mean": mean(values),
        "sd": sample_sd(values),
        "min": min(values),
        "max": max(values),
    }
    return {"n": len(values), **{k: round(v, digits) for k, v in stats.items()}}


def ratio(numerator: float, denominator: float, digits: int = 2) -> float | None:
    """``numerator / denominator`` rounded, or None when the denominator is not positive."""
    if denominator <= 0:
        return None
    return round(numerator / denominator, digits)
