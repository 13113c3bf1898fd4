"""Pooling numeric statistics at the hub: exact moments, common histogram partitions, quantiles."""

from __future__ import annotations

import itertools
import math
import statistics
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub_broker.numeric_pooling import (
    Moments,
    common_cells,
    pool_column,
    pool_moments,
    pool_numeric,
    quantiles,
)
from omop.disclosure import is_small
from omop.numeric_disclosure import (
    NUMERIC_SUPPRESSED_DETAIL,
    Cell,
    merge_cells,
    protect_numeric,
)
from omop.numeric_spec import HistogramSpec

T = 10


def moments_of(values: list[float]) -> Moments:
    mean = math.fsum(values) / len(values)
    return Moments(len(values), mean, math.fsum((v - mean) ** 2 for v in values))


def exact_mean_and_sd(values: list[float]) -> tuple[float, float]:
    """Reference with rational arithmetic: no rounding at all until the final conversion."""
    xs = [Fraction(v) for v in values]
    mean = sum(xs, Fraction(0)) / len(xs)
    var = sum(((x - mean) ** 2 for x in xs), Fraction(0)) / (len(xs) - 1)
    return float(mean), math.sqrt(var)


def assert_rel(actual: float | None, expected: float, rel: float = 1e-9) -> None:
    assert actual is not None
    assert actual == pytest.approx(expected, rel=rel, abs=1e-300)


# -- moments -------------------------------------------------------------------------------------------
@settings(max_examples=200)
@given(
    parts=st.lists(
        st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40), min_size=1, max_size=6
    ),
    offset=st.sampled_from([0.0, 1e6, -3e8]),
)
def test_parallel_moments_match_the_union_exactly(parts: list[list[float]], offset: float) -> None:
    parts = [[v + offset for v in part] for part in parts]
    union = [v for part in parts for v in part]
    pooled = pool_moments([moments_of(p) for p in parts])
    assert pooled.n == len(union)
    mean, sd = exact_mean_and_sd(union) if len(union) > 1 else (union[0], 0.0)
    assert_rel(pooled.mean, mean, 1e-12)
    if len(union) > 1 and sd > 1e-6 * max(1.0, abs(mean)):  # below that, any float data has no digits left
        assert_rel(pooled.sd, sd, 1e-9)


def test_moments_edge_cases() -> None:
    empty = Moments(0, 0.0, 0.0)
    one = Moments(1, 5.0, 0.0)
    assert empty.combine(one) == one and one.combine(empty) == one
    assert one.sd is None
    assert Moments(2, 1.0, 2.0).sd == pytest.approx(math.sqrt(2.0))
    assert pool_moments([]) == empty
    # combining is symmetric
    a, b = moments_of([1.0, 2.0, 4.0]), moments_of([10.0, 11.0])
    assert a.combine(b).mean == pytest.approx(b.combine(a).mean)
    assert a.combine(b).m2 == pytest.approx(b.combine(a).m2)
    assert a.combine(b).sd == pytest.approx(statistics.stdev([1.0, 2.0, 4.0, 10.0, 11.0]))


# -- common partition ------------------------------------------------------------------------------------
def test_common_cells_keep_only_shared_cuts() -> None:
    a = [(0, 1, 20), (2, 3, 30), (4, 4, 10)]
    b = [(0, 0, 15), (1, 3, 25), (4, 4, 0)]
    assert common_cells([a, b], 5) == [(0, 3, 90), (4, 4, 10)]
    assert common_cells([a], 5) == a
    assert common_cells([], 3) == [(0, 0, 0), (1, 1, 0), (2, 2, 0)]


@st.composite
def partitions(draw: st.DrawFn, bins: int) -> list[Cell]:
    counts = draw(st.lists(st.integers(0, 40), min_size=bins, max_size=bins))
    cells = merge_cells([(i, i, c) for i, c in enumerate(counts)], T)
    return cells or [(0, bins - 1, sum(counts))]


@settings(max_examples=200)
@given(data=st.data(), bins=st.integers(1, 25), trusts=st.integers(1, 5))
def test_common_cells_properties(data: st.DataObject, bins: int, trusts: int) -> None:
    parts = [data.draw(partitions(bins)) for _ in range(trusts)]
    pooled = common_cells(parts, bins)
    assert pooled[0][0] == 0 and pooled[-1][1] == bins - 1
    assert sum(c for _, _, c in pooled) == sum(c for p in parts for _, _, c in p)
    for first, last, count in pooled:
        # every trust's cells fit wholly inside pooled cells, and counts add up per pooled cell
        inside = [c for p in parts for (f, la, c) in p if first <= f and la <= last]
        assert sum(inside) == count
    pooled_cuts = {last for _, last, _ in pooled[:-1]}
    for p in parts:
        assert pooled_cuts <= {last for _, last, _ in p[:-1]}


# -- quantiles -------------------------------------------------------------------------------------------
def test_quantiles_interpolate_linearly_in_cells() -> None:
    spec = HistogramSpec(lower=0, upper=4, bins=4)
    assert quantiles(spec, [(0, 0, 10), (1, 1, 10), (2, 2, 10), (3, 3, 10)]) == {
        "q1": 1.0, "median": 2.0, "q3": 3.0,
    }  # fmt: skip
    # merged cell (1..2) holds half the values: the median sits at the far end of it
    q = quantiles(spec, [(0, 0, 10), (1, 2, 20), (3, 3, 10)])
    assert q == {"q1": 1.0, "median": 2.0, "q3": 3.0}
    # zero cells are skipped; an open-ended edge cell is clamped to the grid's range
    q = quantiles(spec, [(0, 0, 0), (1, 2, 0), (3, 3, 40)])
    assert q == {"q1": 3.25, "median": 3.5, "q3": 3.75}
    assert quantiles(spec, [(0, 3, 0)]) is None


# -- pool_numeric ----------------------------------------------------------------------------------------
GRID = HistogramSpec(lower=15, upper=45, bins=10)


def trust_numeric(values: list[float], cohort_persons: int | None = None) -> dict[str, Any]:
    """Released numeric dict of a trust holding ``values`` (one per person) in column ``bmi``."""
    counts = [0] * GRID.bins
    for v in values:
        i = min(max(math.floor((v - GRID.lower) / GRID.width), 0), GRID.bins - 1)
        counts[i] += 1
    m = moments_of(values) if values else Moments(0, 0.0, 0.0)
    raw = {
        "cohort_persons": len(values) if cohort_persons is None else cohort_persons,
        "columns": {
            "bmi": {
                "persons": m.n,
                "mean": m.mean if values else None,
                "m2": m.m2 if values else None,
                "histogram": counts,
            }
        },
    }
    return protect_numeric(raw, T, {"bmi": GRID})


def test_pooled_figures_and_histogram_across_differently_merged_trusts() -> None:
    a = [16.0] * 4 + [20.0] * 30 + [26.0] * 12 + [44.0] * 3  # small bins at both ends
    b = [17.0] * 12 + [21.0] * 5 + [29.0] * 40 + [50.0] * 11
    c = [30.0] * 6  # too few: suppressed at the trust
    per_trust = [trust_numeric(a), trust_numeric(b), trust_numeric(c)]
    assert per_trust[2]["bmi"]["status"] == "suppressed"
    pooled = pool_numeric(per_trust, T, {"bmi": GRID})["bmi"]
    union = a + b
    mean, sd = exact_mean_and_sd(union)
    assert pooled["status"] == "released" and pooled["n"] == len(union) and pooled["trusts"] == 2
    assert_rel(pooled["mean"], mean, 1e-12)
    assert_rel(pooled["sd"], sd)
    hist = pooled["histogram"]
    assert sum(cell["count"] for cell in hist) == len(union)
    assert all(not is_small(cell["count"], T) for cell in hist)
    assert hist[0]["lower"] is None and hist[-1]["upper"] is None
    for left, right in itertools.pairwise(hist):
        assert left["upper"] == right["lower"] is not None
    assert set(pooled["quantiles"]) == {"q1", "median", "q3"}
    assert pooled["quantiles"]["q1"] <= pooled["quantiles"]["median"] <= pooled["quantiles"]["q3"]


def test_pooled_column_below_threshold_or_everywhere_refused() -> None:
    suppressed = pool_numeric([trust_numeric([20.0] * 5, 50), trust_numeric([20.0] * 9, 50)], T)
    assert suppressed["bmi"] == {
        "status": "suppressed", "n": None, "mean": None, "sd": None, "trusts": 0,
        "detail": suppressed["bmi"]["detail"],
    }  # fmt: skip
    rejected_entry = {"status": "rejected", "reason_code": "multiple_values_per_person", "detail": "d"}
    out = pool_numeric([{"bmi": rejected_entry}, {"bmi": {"status": "suppressed", "detail": "x"}}], T)
    assert out["bmi"]["status"] == "rejected" and out["bmi"]["reason_code"] == "multiple_values_per_person"
    assert pool_numeric([], T) == {} and pool_numeric([None, {}], T) == {}


def test_malformed_or_mismatched_entries_are_left_out() -> None:
    good = trust_numeric([20.0] * 15 + [30.0] * 15)
    tampered = trust_numeric([20.0] * 15 + [30.0] * 15)
    tampered["bmi"]["n"] = 5  # breaks the contract: below the threshold
    other_grid = trust_numeric([20.0] * 40)
    other_grid["bmi"]["histogram"]["upper"] = 50.0
    with_min = trust_numeric([25.0] * 12)
    with_min["bmi"]["min"] = 25.0
    pooled = pool_numeric([good, tampered, other_grid, with_min], T, {"bmi": GRID})["bmi"]
    assert pooled["n"] == 30 and pooled["trusts"] == 1
    assert sum(c["count"] for c in pooled["histogram"]) == 30
    # without a requested histogram, released entries with one still pool their moments
    assert pool_numeric([good, other_grid], T)["bmi"]["n"] == 70


def test_pool_column_checks_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        pool_column([], 9)


@settings(max_examples=150, deadline=None)
@given(
    trusts=st.lists(
        st.lists(st.floats(5, 60, allow_nan=False).map(lambda v: round(v, 1)), min_size=0, max_size=80),
        min_size=1,
        max_size=4,
    )
)
def test_pooled_histogram_always_protected_and_consistent(trusts: list[list[float]]) -> None:
    per_trust = [trust_numeric(values) for values in trusts]
    pooled = pool_numeric(per_trust, T, {"bmi": GRID})["bmi"]
    released = [values for values, numeric in zip(trusts, per_trust, strict=True)
                if numeric["bmi"]["status"] == "released"]  # fmt: skip
    n = sum(len(v) for v in released)
    if n < T:
        assert pooled["status"] == "suppressed" and pooled["n"] is None
        assert "histogram" not in pooled
        return
    assert pooled["n"] == n and pooled["trusts"] == len(released)
    hist = pooled["histogram"]
    assert sum(cell["count"] for cell in hist) == n
    assert all(not is_small(cell["count"], T) for cell in hist)
    # each pooled cell holds exactly the values of the released trusts inside its bounds
    for cell in hist:
        lo = -math.inf if cell["lower"] is None else cell["lower"]
        hi = math.inf if cell["upper"] is None else cell["upper"]
        assert cell["count"] == sum(1 for vs in released for v in vs if lo <= v < hi)
    q = pooled["quantiles"]
    assert GRID.lower <= q["q1"] <= q["median"] <= q["q3"] <= GRID.upper


def test_suppressed_detail_differs_from_trust_wording_but_is_constant() -> None:
    a = pool_numeric([trust_numeric([20.0] * 3, 40)], T)["bmi"]
    b = pool_numeric([trust_numeric([], 40)], T)["bmi"]
    assert a == b and a["detail"] != NUMERIC_SUPPRESSED_DETAIL
