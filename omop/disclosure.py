"""Disclosure control: which aggregate figures may leave a trust (and the hub), as pure functions.

The contract (see docs/query-policy.md):

* A cohort with fewer than T distinct persons, zero included, releases nothing but ``suppressed`` with the
  same wording for 0 and for T-1 (:func:`decide`, :data:`SUPPRESSED_DETAIL`).
* Every released cell is 0 or >= T. Small categories (1..T-1) are merged into ``Other``; if ``Other`` is
  still small the next smallest category joins it, and so on (:func:`protect_distribution`).
* Because the released cells of a distribution partition its total, every released figure, and every
  figure obtained by subtracting released figures from the total, is a sum of whole released cells: it is
  0 or >= T. No original small category is released under its own label.
* A non-null / null pair with a small side is withheld as a pair (:func:`protect_pair`): releasing the
  large side alone would give the small side away as ``total - large``.

T is ``max(10, configured)``; a configured value below 10 is refused where policy is loaded
(:func:`check_threshold`).
"""

from __future__ import annotations

from collections.abc import Mapping

from omop.errors import UsageError

#: The smallest threshold the product will ever apply.
MIN_THRESHOLD = 10

#: The one and only wording of a suppressed result, identical for 0 persons and for T-1.
SUPPRESSED_DETAIL = "cohort below the disclosure threshold"

#: The default label of the bucket small categories are merged into.
OTHER_LABEL = "Other"


def check_threshold(value: int) -> int:
    """Return ``value`` if it is an acceptable configured threshold; refuse anything below 10 loudly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"the disclosure threshold must be an integer, not {value!r}")
    if value < MIN_THRESHOLD:
        raise UsageError(
            f"the disclosure threshold must be at least {MIN_THRESHOLD} (got {value}); "
            "a lower value would release cells of fewer than 10 persons"
        )
    return value


def effective_threshold(configured: int) -> int:
    """T = max(10, configured): the threshold actually applied whatever the configuration says."""
    return max(MIN_THRESHOLD, int(configured))


def _require_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < MIN_THRESHOLD:
        raise ValueError(f"threshold must be an integer >= {MIN_THRESHOLD}, got {threshold!r}")
    return threshold


def _require_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def is_small(count: int, threshold: int) -> bool:
    """A count that may not be released: 1..T-1 (0 is not small: releasing it is allowed)."""
    return 0 < count < threshold


def decide(person_count: int, threshold: int) -> bool:
    """True if a cohort of ``person_count`` distinct persons may be released at all (count >= T).

    The one implementation of this rule: the trust's pipeline (``release_figures``, and the noisy count in
    dp mode) and the hub's pooling ask it.
    """
    _require_threshold(threshold)
    _require_count("person_count", person_count)
    return person_count >= threshold


def protect_distribution(
    counts: Mapping[str, int], threshold: int, other_label: str = OTHER_LABEL
) -> dict[str, int]:
    """Merge small categories so that every released cell is 0 or >= ``threshold``.

    1. Categories with 1..T-1 persons go into ``other_label``. A category already called ``other_label``
       starts in that bucket.
    2. While the bucket holds 1..T-1, the smallest remaining non-zero category (ties by label) joins it.
    3. Zero categories are released as 0 and never merged: a zero reveals nothing a total does not.

    Invariants of the result ``r`` (when not empty): ``sum(r.values()) == sum(counts.values())``; every
    value is 0 or >= T; no category with 1..T-1 is released under its own label; the merged bucket always
    holds at least two non-empty categories, or exactly the pre-existing ``other_label`` category.

    If the whole distribution adds up to 1..T-1 nothing can be released and the result is ``{}``; callers
    treat that as withheld (a released cohort's distributions normally add up to >= T).
    """
    _require_threshold(threshold)
    cells: dict[str, int] = {}
    bucket = 0
    for label, count in counts.items():
        _require_count(f"count of {label!r}", count)
        if label == other_label or is_small(count, threshold):
            bucket += count
        else:
            cells[label] = count
    total = bucket + sum(cells.values())
    if is_small(total, threshold):
        return {}
    while is_small(bucket, threshold):
        candidates = [(count, label) for label, count in cells.items() if count > 0]
        # total >= T and bucket < T, so some non-zero cell remains to merge.
        count, label = min(candidates)
        bucket += count
        del cells[label]
    released = dict(cells)
    if bucket > 0 or other_label in counts:
        released[other_label] = bucket
    return released


def protect_pair(non_null: int, null: int, threshold: int) -> tuple[int | None, int | None]:
    """Release a (non-null, null) pair only if neither side is 1..T-1; else withhold both: (None, None)."""
    _require_threshold(threshold)
    _require_count("non_null", non_null)
    _require_count("null", null)
    if is_small(non_null, threshold) or is_small(null, threshold):
        return (None, None)
    return (non_null, null)
