"""Numeric disclosure rules: unit cases, and hypothesis properties for the histogram cell rule."""

from __future__ import annotations

import copy
from itertools import combinations, pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omop.disclosure import is_small
from omop.numeric_disclosure import (
    NUMERIC_SUPPRESSED_DETAIL,
    Cell,
    absorb_empty_cells,
    cells_from_json,
    check_cells,
    check_released_numeric,
    merge_cells,
    protect_column,
    protect_histogram,
    protect_numeric,
)
from omop.numeric_spec import HistogramSpec

T = 10


def counts_strategy(max_bins: int = 40) -> st.SearchStrategy[list[int]]:
    # mostly small counts so that merging is exercised, with zeros and a few large bins mixed in
    return st.lists(
        st.one_of(st.just(0), st.integers(1, T - 1), st.integers(T, 60), st.integers(1, 3)),
        min_size=1,
        max_size=max_bins,
    )


def assert_partition(cells: list[Cell], bins: int) -> None:
    assert cells[0][0] == 0 and cells[-1][1] == bins - 1
    for (_, last, _), (first, _, _) in pairwise(cells):
        assert first == last + 1


# -- protect_histogram: unit cases ----------------------------------------------------------------------
def test_large_bins_pass_unchanged() -> None:
    assert protect_histogram([10, 25, 0, 11], T) == [(0, 0, 10), (1, 1, 25), (2, 2, 0), (3, 3, 11)]


def test_small_bin_merges_with_smaller_neighbour_never_dropped() -> None:
    assert protect_histogram([40, 3, 12], T) == [(0, 0, 40), (1, 2, 15)]
    assert protect_histogram([12, 3, 40], T) == [(0, 1, 15), (2, 2, 40)]


def test_zeros_are_kept_and_a_merge_prefers_the_shorter_span() -> None:
    # 3 is next to 50 on the right, but four zeros away from 12 on the left: merge right
    assert protect_histogram([12, 0, 0, 0, 3, 50], T) == [
        (0, 0, 12), (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 5, 53),
    ]  # fmt: skip
    # a small bin surrounded by zeros crosses them to reach a non-zero bin
    assert protect_histogram([0, 0, 4, 0, 0], T) == []
    assert protect_histogram([20, 0, 4, 0, 0], T) == [(0, 2, 24), (3, 3, 0), (4, 4, 0)]


def test_small_tails_merge_inwards() -> None:
    assert protect_histogram([1, 2, 30, 40, 5, 1], T) == [(0, 2, 33), (3, 5, 46)]


def test_small_total_releases_nothing_and_zero_total_releases_zeros() -> None:
    assert protect_histogram([3, 0, 6], T) == []
    assert protect_histogram([9], T) == []
    assert protect_histogram([0, 0], T) == [(0, 0, 0), (1, 1, 0)]


def test_several_small_bins_pool_together() -> None:
    assert protect_histogram([2, 2, 2, 2, 2], T) == [(0, 4, 10)]
    assert protect_histogram([5, 5, 5, 5], T) == [(0, 1, 10), (2, 3, 10)]


def test_merge_cells_refuses_gaps_and_bad_values() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        merge_cells([(0, 0, 10), (2, 2, 10)], T)
    with pytest.raises(ValueError, match="non-negative"):
        merge_cells([(0, 0, -1)], T)
    with pytest.raises(ValueError, match="threshold"):
        merge_cells([(0, 0, 10)], 5)


# -- protect_histogram: properties -----------------------------------------------------------------------
@settings(max_examples=400)
@given(counts=counts_strategy(), threshold=st.integers(10, 25))
def test_cell_rule_properties(counts: list[int], threshold: int) -> None:
    cells = protect_histogram(counts, threshold)
    total = sum(counts)
    if is_small(total, threshold):
        assert cells == []
        return
    assert_partition(cells, len(counts))
    # every released cell is 0 or >= T, and nothing is dropped
    assert all(not is_small(c, threshold) for _, _, c in cells)
    assert sum(c for _, _, c in cells) == total
    # each cell's count is the sum of the bins it covers
    assert all(c == sum(counts[f : last + 1]) for f, last, c in cells)
    # no gratuitous merging: a multi-bin cell always contains an originally small bin
    for f, last, _ in cells:
        if last > f:
            assert any(is_small(counts[i], threshold) for i in range(f, last + 1))
    # a bin that was small on its own is never released on its own
    for f, last, _ in cells:
        if f == last:
            assert not is_small(counts[f], threshold)
    # protecting again changes nothing
    assert merge_cells(cells, threshold) == cells


@settings(max_examples=200)
@given(counts=counts_strategy(max_bins=14))
def test_no_small_cell_derivable_by_subtraction(counts: list[int]) -> None:
    cells = protect_histogram(counts, T)
    if not cells:
        return
    total = sum(counts)
    released = [c for _, _, c in cells]
    # the total is released too (it is n); every difference of the total and a sub-sum of cells is 0 or >= T
    for k in range(len(released) + 1):
        for subset in combinations(range(len(released)), k):
            assert not is_small(total - sum(released[i] for i in subset), T)


# -- protect_numeric -------------------------------------------------------------------------------------
GRID = HistogramSpec(lower=15, upper=45, bins=10)


def raw_column(n: int, *, mean: float = 27.0, m2: float = 500.0, histogram: bool = True) -> dict[str, Any]:
    counts = [0] * 10
    for i in range(n):
        counts[(i * 7) % 10] += 1
    stats: dict[str, Any] = {"persons": n, "mean": mean, "m2": m2}
    if n == 0:
        stats["mean"] = stats["m2"] = None
    if histogram:
        stats["histogram"] = counts
    return stats


def test_released_column_shape_without_min_or_max() -> None:
    out = protect_numeric({"cohort_persons": 100, "columns": {"bmi": raw_column(100)}}, T, {"bmi": GRID})
    bmi = out["bmi"]
    assert set(bmi) == {"status", "n", "mean", "m2", "histogram"}
    assert (bmi["status"], bmi["n"], bmi["mean"], bmi["m2"]) == ("released", 100, 27.0, 500.0)
    assert bmi["histogram"]["lower"] == 15.0 and bmi["histogram"]["bins"] == 10
    assert sum(c["count"] for c in bmi["histogram"]["cells"]) == 100
    check_released_numeric(out, T)


@pytest.mark.parametrize(
    ("n", "cohort"),
    [(0, 100), (1, 100), (9, 100), (95, 100), (91, 100), (10, 10), (9, 9)],
)
def test_small_n_all_null_and_small_missing_are_suppressed_alike(n: int, cohort: int) -> None:
    column = protect_column(raw_column(n), cohort, T, GRID)
    if n >= T and not is_small(cohort - n, T):
        assert column["status"] == "released"
    else:
        assert column == {"status": "suppressed", "detail": NUMERIC_SUPPRESSED_DETAIL}


def test_persons_with_several_values_are_missing_so_no_status_turns_on_one_person() -> None:
    # The trust's SQL counts a person with several distinct values as missing (trust_worker.numeric_sql):
    # one such person in a cohort of 100 is one more missing person, and only the pair rule applies.
    assert protect_column(raw_column(99), 100, T, GRID)["status"] == "suppressed"  # 1 missing: small
    assert protect_column(raw_column(89), 100, T, GRID)["status"] == "released"  # 11 missing
    assert protect_column(raw_column(88), 100, T, GRID)["status"] == "released"  # one more: unchanged
    with pytest.raises(ValueError, match="persons <= cohort_persons"):
        protect_column(raw_column(40), 20, T, GRID)


def test_values_out_of_double_range_are_refused() -> None:
    column = protect_column(raw_column(20, mean=float("inf")), 20, T, None)
    assert column["status"] == "rejected" and column["reason_code"] == "out_of_range"
    assert protect_column({**raw_column(20), "m2": "Infinity"}, 20, T, None)["status"] == "rejected"


def test_tiny_negative_m2_from_rounding_is_clamped() -> None:
    assert protect_column(raw_column(20, m2=-1e-12, histogram=False), 20, T)["m2"] == 0.0


def test_raw_histogram_inconsistent_with_persons_is_a_programming_error() -> None:
    bad = raw_column(20)
    bad["histogram"][0] += 1
    with pytest.raises(ValueError, match="add up"):
        protect_column(bad, 20, T, GRID)
    with pytest.raises(ValueError, match="hold 3 non-negative"):
        protect_column(raw_column(20), 20, T, HistogramSpec(lower=0, upper=1, bins=3))


@settings(max_examples=200)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=30),
    missing=st.integers(0, 40),
)
def test_protected_numeric_always_satisfies_the_contract(counts: list[int], missing: int) -> None:
    n = sum(counts)
    spec = HistogramSpec(lower=0, upper=1, bins=len(counts))
    stats = {"persons": n, "mean": 0.5, "m2": 1.0, "histogram": counts}
    out = protect_numeric({"cohort_persons": n + missing, "columns": {"x": stats}}, T, {"x": spec})
    check_released_numeric(out, T)
    entry = out["x"]
    assert entry["status"] in ("released", "suppressed")  # never a status of its own for one person
    if entry["status"] == "released":
        assert entry["n"] == n >= T and not is_small(missing, T)
        spec_back, cells = cells_from_json(entry["histogram"])
        assert spec_back == spec
        check_cells(cells, spec.bins, T)
        assert sum(c for _, _, c in cells) == n


# -- check_released_numeric (what TrustResult's validator should call) ------------------------------------
def released_example() -> dict[str, Any]:
    return protect_numeric(
        {"cohort_persons": 100, "columns": {"bmi": raw_column(100), "age": raw_column(100, histogram=False)}},
        T,
        {"bmi": GRID},
    )


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda d: d["bmi"].__setitem__("min", 12.0), "exactly n, mean, m2"),
        (lambda d: d["age"].__setitem__("max", 80), "exactly n, mean, m2"),
        (lambda d: d["age"].__setitem__("n", 9), "at or above the threshold"),
        (lambda d: d["age"].__setitem__("n", True), "at or above the threshold"),
        (lambda d: d["age"].__setitem__("mean", float("nan")), "finite"),
        (lambda d: d["age"].__setitem__("m2", -1.0), "non-negative"),
        (lambda d: d["bmi"]["histogram"]["cells"][0].__setitem__("count", 3), "0 or at least"),
        (lambda d: d["bmi"]["histogram"]["cells"].pop(), "cover bins"),
        (lambda d: d["bmi"]["histogram"]["cells"][1].__setitem__("first", 5), "contiguous"),
        (lambda d: d["bmi"]["histogram"].__setitem__("bins", 0), "histogram grid"),
        (lambda d: d["bmi"].__setitem__("n", 110), "add up to n"),
        (lambda d: d.__setitem__("hba1c", {"status": "suppressed", "detail": "x", "n": 3}), "only status"),
        (lambda d: d.__setitem__("hba1c", {"status": "withheld"}), "unknown numeric column status"),
        (lambda d: d.__setitem__("", d["age"]), "non-empty"),
    ],
)
def test_contract_check_refuses_tampered_results(tamper: Any, message: str) -> None:
    numeric = released_example()
    check_released_numeric(copy.deepcopy(numeric), T)
    tamper(numeric)
    with pytest.raises(ValueError, match=message):
        check_released_numeric(numeric, T)


def test_released_numeric_survives_the_signed_result_round_trip() -> None:
    from datetime import UTC, datetime

    from omop.protocol import ResultStatus, TrustResult, canonical_json, parse_result

    numeric = released_example()
    numeric["hba1c"] = {"status": "suppressed", "detail": NUMERIC_SUPPRESSED_DETAIL}
    result = TrustResult(
        query_id="q1",
        trust_id="trust-a",
        status=ResultStatus.RELEASED,
        threshold=T,
        person_count=100,
        numeric=numeric,
        produced_at=datetime.now(UTC),
    )
    back = parse_result(canonical_json(result))
    assert back.numeric == numeric
    check_released_numeric(back.numeric, T)


# -- exact mode: empty bins never mark where the data starts or stops ----------------------------------


def test_empty_bins_are_folded_into_their_neighbours() -> None:
    assert absorb_empty_cells([(0, 0, 0), (1, 1, 12), (2, 3, 0), (4, 4, 15), (5, 5, 0)]) == [
        (0, 3, 12),  # the leading empty bin joins the first full one, the next empty run the one before it
        (4, 5, 15),
    ]
    assert absorb_empty_cells([(0, 2, 0)]) == [(0, 2, 0)]  # nothing at all: one empty cell


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(15, 45, allow_nan=False), min_size=10, max_size=300),
    bins=st.integers(10, 1000),
)
def test_a_fine_grid_does_not_locate_the_minimum_or_maximum(values: list[float], bins: int) -> None:
    """The attack on the shipped rules: a 1,000-bin grid released empty cells one by one, so the first and
    last non-empty bins located the minimum and maximum to the bin width. Now the first released cell runs
    from the (open) lower end to at least the bin of the T-th smallest value, the last one from at most the
    bin of the T-th largest value to the (open) upper end, and every cell holds at least T persons."""
    spec = HistogramSpec(lower=15.0, upper=45.0, bins=bins)
    index = [min(bins - 1, max(0, int((v - spec.lower) / spec.width))) for v in values]
    counts = [0] * bins
    for i in index:
        counts[i] += 1
    released = protect_column(
        {"persons": len(values), "mean": 30.0, "m2": 1.0, "histogram": counts}, len(values), T, spec
    )
    cells = [(c["first"], c["last"], c["count"]) for c in released["histogram"]["cells"]]
    check_cells(cells, bins, T)
    assert all(count >= T for _, _, count in cells)
    ordered = sorted(index)
    assert cells[0][0] == 0 and cells[0][1] >= ordered[T - 1]
    assert cells[-1][1] == bins - 1 and cells[-1][0] <= ordered[-T]
