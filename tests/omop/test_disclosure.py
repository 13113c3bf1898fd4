"""Disclosure rules: unit cases for the subtle merges, and hypothesis properties for the contract."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omop.disclosure import (
    MIN_THRESHOLD,
    OTHER_LABEL,
    SUPPRESSED_DETAIL,
    check_threshold,
    decide,
    effective_threshold,
    protect_distribution,
    protect_pair,
)
from omop.errors import UsageError

T = 10


# -- thresholds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [10, 11, 25, 1000])
def test_check_threshold_accepts_ten_and_above(value: int) -> None:
    assert check_threshold(value) == value


@pytest.mark.parametrize("value", [9, 5, 1, 0, -3])
def test_check_threshold_refuses_below_ten_with_clear_message(value: int) -> None:
    with pytest.raises(UsageError, match="at least 10"):
        check_threshold(value)


@pytest.mark.parametrize("value", ["10", 10.0, True, None])
def test_check_threshold_refuses_non_integers(value: object) -> None:
    with pytest.raises(UsageError, match="integer"):
        check_threshold(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("configured", "expected"), [(0, 10), (5, 10), (10, 10), (11, 11), (50, 50)])
def test_effective_threshold_is_max_of_ten_and_configured(configured: int, expected: int) -> None:
    assert effective_threshold(configured) == expected


# -- cohort-level suppression ----------------------------------------------------------------------
@pytest.mark.parametrize(("count", "released"), [(0, False), (1, False), (9, False), (10, True), (11, True)])
def test_decide_releases_only_at_or_above_threshold(count: int, released: bool) -> None:
    assert decide(count, T) is released


def test_decide_uses_the_given_threshold() -> None:
    assert decide(19, 20) is False
    assert decide(20, 20) is True


def test_suppressed_detail_is_one_fixed_wording() -> None:
    # 0 and T-1 are indistinguishable: the detail is a constant that mentions no number.
    assert SUPPRESSED_DETAIL == "cohort below the disclosure threshold"
    assert not any(ch.isdigit() for ch in SUPPRESSED_DETAIL)


@pytest.mark.parametrize("bad", [9, 0, -1])
def test_functions_refuse_thresholds_below_minimum(bad: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        decide(5, bad)
    with pytest.raises(ValueError, match="threshold"):
        protect_distribution({"a": 5}, bad)
    with pytest.raises(ValueError, match="threshold"):
        protect_pair(5, 5, bad)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        protect_distribution({"a": -1, "b": 20}, T)
    with pytest.raises(ValueError, match="non-negative"):
        decide(-1, T)
    with pytest.raises(ValueError, match="non-negative"):
        protect_pair(-1, 20, T)


# -- distributions: worked cases -------------------------------------------------------------------
def test_no_small_categories_pass_through_unchanged() -> None:
    assert protect_distribution({"male": 1321, "female": 1373}, T) == {"male": 1321, "female": 1373}


def test_several_small_categories_merge_into_other() -> None:
    result = protect_distribution({"a": 100, "b": 4, "c": 3, "d": 5}, T)
    assert result == {"a": 100, OTHER_LABEL: 12}


def test_single_small_category_is_never_passed_through_as_other() -> None:
    # FLIP's leak: one small bucket released as "Other" with its exact count. It must absorb the smallest
    # releasable category as well.
    result = protect_distribution({"a": 100, "b": 50, "c": 3}, T)
    assert result == {"a": 100, OTHER_LABEL: 53}


def test_other_still_small_merges_next_smallest_repeatedly() -> None:
    result = protect_distribution({"a": 100, "b": 2, "c": 3}, T)  # Other would be 5
    assert result == {OTHER_LABEL: 105}


def test_everything_merging_into_one_cell_equals_the_total() -> None:
    result = protect_distribution({"a": 4, "b": 4, "c": 4}, T)
    assert result == {OTHER_LABEL: 12}


def test_zero_categories_are_released_as_zero_and_not_merged() -> None:
    result = protect_distribution({"a": 100, "b": 0, "c": 3, "d": 20}, T)
    assert result == {"a": 100, "b": 0, OTHER_LABEL: 23}


def test_total_below_threshold_releases_nothing() -> None:
    assert protect_distribution({"a": 4, "b": 3}, T) == {}


def test_all_zero_distribution_is_released_as_zeros() -> None:
    assert protect_distribution({"a": 0, "b": 0}, T) == {"a": 0, "b": 0}


def test_existing_other_category_starts_in_the_bucket() -> None:
    # A real category called "Other" cannot hide a merged small count: it is part of the bucket.
    assert protect_distribution({OTHER_LABEL: 50, "b": 3, "c": 40}, T) == {"c": 40, OTHER_LABEL: 53}
    assert protect_distribution({OTHER_LABEL: 50, "c": 40}, T) == {OTHER_LABEL: 50, "c": 40}


def test_custom_other_label() -> None:
    result = protect_distribution({"a": 30, "b": 2, "c": 9}, T, other_label="(merged)")
    assert result == {"a": 30, "(merged)": 11}


def test_ties_merge_deterministically_by_label() -> None:
    first = protect_distribution({"z": 20, "y": 20, "x": 3}, T)
    second = protect_distribution({"x": 3, "y": 20, "z": 20}, T)
    assert first == second == {"z": 20, OTHER_LABEL: 23}


def test_higher_threshold_merges_more() -> None:
    assert protect_distribution({"a": 100, "b": 15, "c": 15}, 20) == {"a": 100, OTHER_LABEL: 30}


# -- pairs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("non_null", "null", "expected"),
    [
        (100, 0, (100, 0)),
        (100, 10, (100, 10)),
        (100, 9, (None, None)),
        (1, 100, (None, None)),
        (0, 0, (0, 0)),
        (10, 10, (10, 10)),
        (5, 0, (None, None)),
    ],
)
def test_pair_with_a_small_side_is_withheld_as_a_pair(
    non_null: int, null: int, expected: tuple[int | None, int | None]
) -> None:
    assert protect_pair(non_null, null, T) == expected


# -- properties ------------------------------------------------------------------------------------
thresholds = st.integers(min_value=MIN_THRESHOLD, max_value=40)
counts = st.one_of(st.integers(0, 15), st.integers(0, 60), st.integers(0, 5000))
distributions = st.dictionaries(st.text(alphabet="abcdefgh", min_size=1, max_size=3), counts, max_size=8)


def _released_or_zero(value: int, threshold: int) -> bool:
    return value == 0 or value >= threshold


@settings(max_examples=400, deadline=None)
@given(distributions, thresholds)
def test_every_released_cell_is_zero_or_at_least_threshold(dist: dict[str, int], threshold: int) -> None:
    released = protect_distribution(dist, threshold)
    assert all(_released_or_zero(v, threshold) for v in released.values())


@settings(max_examples=400, deadline=None)
@given(distributions, thresholds)
def test_sum_is_preserved_unless_the_whole_is_small(dist: dict[str, int], threshold: int) -> None:
    released = protect_distribution(dist, threshold)
    total = sum(dist.values())
    if 0 < total < threshold:
        assert released == {}
    else:
        assert sum(released.values()) == total


@settings(max_examples=300, deadline=None)
@given(distributions, thresholds)
def test_no_small_figure_derivable_by_subtraction(dist: dict[str, int], threshold: int) -> None:
    # With the total also released, a reader can compute total - (sum of any subset of released cells).
    # Every such figure must be 0 or >= T (it is a sum of whole released cells).
    released = protect_distribution(dist, threshold)
    values = list(released.values())
    total = sum(dist.values())
    for size in range(len(values) + 1):
        for subset in combinations(values, size):
            derived = total - sum(subset)
            if released:
                assert _released_or_zero(derived, threshold), (released, subset)
            assert _released_or_zero(sum(subset), threshold) or not released


@settings(max_examples=400, deadline=None)
@given(distributions, thresholds)
def test_small_categories_are_never_released_under_their_own_label(
    dist: dict[str, int], threshold: int
) -> None:
    released = protect_distribution(dist, threshold)
    for label, value in dist.items():
        if 0 < value < threshold and label != OTHER_LABEL:
            assert label not in released


@settings(max_examples=400, deadline=None)
@given(distributions, thresholds)
def test_released_labels_keep_their_exact_counts(dist: dict[str, int], threshold: int) -> None:
    # Merging never changes a category's figure: it either appears exactly or not at all.
    released = protect_distribution(dist, threshold)
    for label, value in released.items():
        if label != OTHER_LABEL:
            assert dist[label] == value


@settings(max_examples=400, deadline=None)
@given(distributions, thresholds)
def test_merged_bucket_never_reveals_a_single_category(dist: dict[str, int], threshold: int) -> None:
    # The Other cell is either the pre-existing Other category alone or the sum of >= 2 non-empty
    # categories, so it never equals one small category's exact count under another name.
    released = protect_distribution(dist, threshold)
    if OTHER_LABEL not in released or released[OTHER_LABEL] == 0:
        return
    merged = [lbl for lbl, v in dist.items() if v > 0 and (lbl not in released or lbl == OTHER_LABEL)]
    assert len(merged) >= 2 or merged == [OTHER_LABEL]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200), thresholds)
def test_pair_properties(non_null: int, null: int, threshold: int) -> None:
    a, b = protect_pair(non_null, null, threshold)
    if a is None or b is None:
        assert a is None and b is None
        assert 0 < non_null < threshold or 0 < null < threshold
    else:
        assert (a, b) == (non_null, null)
        assert _released_or_zero(a, threshold) and _released_or_zero(b, threshold)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 100), thresholds)
def test_decide_matches_threshold(count: int, threshold: int) -> None:
    assert decide(count, threshold) is (count >= threshold)
