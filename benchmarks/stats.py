"""Summary statistics for repeated measurements: what the standard library's ``statistics`` lacks.

Suites use ``statistics.median``, ``statistics.fmean`` and ``statistics.stdev`` directly. This module adds
only the conventions a benchmark needs on top of them: a percentile of any sample, one value included
(``statistics.quantiles`` needs two), a standard deviation that is 0 for one value, the one summary dict
every suite reports, and a ratio that is None instead of a division by zero.

Percentiles are ``statistics.quantiles(..., method="inclusive")``: linear interpolation between closest
ranks (numpy's default too), so a p95 over 50 samples is not just the 48th value.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (0..100) of ``values``, linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100 (got {p})")
    if p == 0 or len(values) == 1:
        return min(values)
    if p == 100:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1), ``statistics.stdev``; 0 for a single value."""
    return statistics.stdev(values) if len(values) >= 2 else 0.0


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """n, median, p95, mean, sd, min and max of ``values``, rounded to ``digits`` decimals."""
    if not values:
        return {"n": 0}
    stats = {
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values),
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
