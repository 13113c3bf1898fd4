"""Differential privacy for released figures: OpenDP's mechanisms and how a query's privacy loss is split.

The privacy unit is one person: two cohort databases are neighbours when they differ by one person's
records. Every figure a trust releases in ``dp`` mode is computed in PostgreSQL with each person's
contribution bounded (one person is one distinct person, at most ``max_rows_per_person`` rows, values
clamped to declared bounds) and then noised here, before the answer is sealed.

The noise is OpenDP's: ``make_laplace`` over integers is the discrete Laplace mechanism (integer figures
stay integers, no floating-point attack on the sampler), over floats it is OpenDP's Laplace mechanism
for sums. Nothing here samples noise or adds up privacy losses by hand: each mechanism's loss is what
OpenDP's privacy map says for the figure's sensitivity, and a query's loss is the sum over its figure
groups (sequential composition), which :func:`plan_noise` checks against the trust's ``epsilon`` per query.

A query's ``epsilon`` is split over *figure groups* by fixed weights (:data:`WEIGHTS`), chosen before any
data is read, so neither the split nor the charge can depend on the data:

* ``person_count`` (sensitivity 1) weighs 2: it is the figure researchers read first;
* ``sex`` and ``age`` (the persons per category: one person is in one cell, L1 sensitivity 1) weigh 1 each;
* ``rows`` (row count and per-column non-null counts, each person contributing at most C rows to each: L1
  sensitivity C x (1 + columns)) weighs 1;
* per numeric column, values clamped to ``[L, U]`` and centred on the midpoint ``c = (L + U) / 2``:
  ``n`` (1), ``sum`` of ``x - c`` (half-width ``h = (U - L) / 2``), ``sumsq`` of ``(x - c)^2`` (``h^2``) and,
  when asked, a ``histogram`` (one person is in one bin: 1), weight 1 each. Centring makes the
  sensitivities depend on the width of the bounds only, not on how far from zero they lie.

Everything after the noise (rounding, clamping at 0, thresholds, merging small cells) is post-processing
and costs no privacy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# the mode is one of the vocabularies in omop.states; it can still be imported from here
from omop.states import PrivacyMode as PrivacyMode

#: How a query's epsilon is shared between figure groups (see the module docstring).
WEIGHTS: dict[str, float] = {"person_count": 2.0, "sex": 1.0, "age": 1.0, "rows": 1.0}
NUMERIC_PART_WEIGHT = 1.0

#: What every dp answer says about its noise.
MECHANISM = "discrete Laplace (counts), Laplace (sums), from OpenDP"


@dataclass(frozen=True)
class NoiseGroup:
    """One group of figures noised together: its L1 sensitivity and whether its figures are integers."""

    name: str
    sensitivity: float
    integer: bool
    weight: float


@cache
def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def _laplace(integer: bool, scale: float) -> Any:
    """OpenDP's Laplace measurement on a vector of integers (discrete) or of floats."""
    dp = _opendp()
    if integer:
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    else:
        space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
    return dp.m.make_laplace(*space, scale=scale)


def privacy_loss(group: NoiseGroup, scale: float) -> float:
    """The epsilon OpenDP's privacy map gives the group's mechanism at ``scale`` for its sensitivity."""
    d_in = math.ceil(group.sensitivity) if group.integer else float(group.sensitivity)
    return float(_laplace(group.integer, scale).map(d_in))


@dataclass(frozen=True)
class NoisePlan:
    """The scale of every figure group of one query and the privacy loss they add up to."""

    epsilon: float
    groups: dict[str, NoiseGroup]
    scales: dict[str, float]

    def noisy_ints(self, group: str, values: Sequence[int]) -> list[int]:
        """``values`` with discrete Laplace noise at the group's scale (may come out negative)."""
        if not values:
            return []
        return [int(v) for v in _laplace(True, self.scales[group])([int(v) for v in values])]

    def noisy_floats(self, group: str, values: Sequence[float]) -> list[float]:
        if not values:
            return []
        return [float(v) for v in _laplace(False, self.scales[group])([float(v) for v in values])]


def plan_noise(epsilon: float, groups: Sequence[NoiseGroup]) -> NoisePlan:
    """Share ``epsilon`` over ``groups`` by weight; each scale is checked with OpenDP's privacy map.

    Scales are rounded *up* slightly (to 12 significant digits) so that the losses OpenDP reports never add
    up to more than ``epsilon``; a plan whose losses do exceed it is a bug and raises ``AssertionError``.
    """
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, not {epsilon!r}")
    total_weight = sum(g.weight for g in groups)
    scales: dict[str, float] = {}
    spent = 0.0
    for group in groups:
        share = epsilon * group.weight / total_weight
        d_in = math.ceil(group.sensitivity) if group.integer else group.sensitivity
        scale = float(f"{d_in / share * (1 + 1e-9):.12g}")
        scales[group.name] = scale
        spent += privacy_loss(group, scale)
    assert spent <= epsilon * (1 + 1e-9), f"noise plan spends {spent} > {epsilon}"
    return NoisePlan(epsilon, {g.name: g for g in groups}, scales)


def cohort_groups(output_columns: int, max_rows_per_person: int) -> list[NoiseGroup]:
    """The figure groups of every cohort answer (see the module docstring for the sensitivities)."""
    return [
        NoiseGroup("person_count", 1, True, WEIGHTS["person_count"]),
        NoiseGroup("sex", 1, True, WEIGHTS["sex"]),
        NoiseGroup("age", 1, True, WEIGHTS["age"]),
        NoiseGroup("rows", max_rows_per_person * (1 + output_columns), True, WEIGHTS["rows"]),
    ]


def numeric_groups(column: str, lower: float, upper: float, histogram: bool) -> list[NoiseGroup]:
    """The figure groups of one numeric column whose values are clamped to ``[lower, upper]``."""
    half = (upper - lower) / 2
    groups = [
        NoiseGroup(f"numeric.{column}.n", 1, True, NUMERIC_PART_WEIGHT),
        NoiseGroup(f"numeric.{column}.sum", half, False, NUMERIC_PART_WEIGHT),
        NoiseGroup(f"numeric.{column}.sumsq", half * half, False, NUMERIC_PART_WEIGHT),
    ]
    if histogram:
        groups.append(NoiseGroup(f"numeric.{column}.histogram", 1, True, NUMERIC_PART_WEIGHT))
    return groups


# -- what the hub needs to report honest uncertainty ----------------------------------------------------


def discrete_laplace_variance(scale: float) -> float:
    """Variance of the discrete Laplace distribution with scale ``t``: 2e^(-1/t) / (1 - e^(-1/t))^2."""
    if scale <= 0:
        return 0.0
    q = math.exp(-1.0 / scale)
    return 2.0 * q / (1.0 - q) ** 2


def laplace_variance(scale: float) -> float:
    return 2.0 * scale * scale


#: Two-sided 95 % normal quantile: pooled noise of several trusts is close to normal, and for one trust
#: the Laplace 95 % interval (+/- 3.0 scale) is wider than 1.96 standard deviations (2.77 scale), so the
#: hub reports the larger of the two (:func:`interval_half_width`).
Z95 = 1.959963984540054


def interval_half_width(variance: float, single_scale: float | None = None) -> float:
    """Half-width of a 95 % interval for a noisy figure with this noise variance.

    ``single_scale``: when one trust's Laplace noise is all there is, its exact 95 % half-width
    (``scale * ln 20``) is used if it is wider than the normal approximation.
    """
    width = Z95 * math.sqrt(max(variance, 0.0))
    if single_scale is not None:
        width = max(width, single_scale * math.log(20.0))
    return width
