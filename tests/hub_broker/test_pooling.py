from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub_broker.pooling import add_counts, overall_status, pool_released


def test_pooled_figures_are_sums_of_released_answers_only() -> None:
    results: list[dict[str, Any]] = [
        {"status": "released", "person_count": 40, "sex": {"Male": 20, "Female": 20}, "age": {"50-59": 40}},
        {"status": "released", "person_count": 25, "sex": {"Male": 10, "Female": 15}, "age": {"50-59": 25}},
        {"status": "suppressed"},
        {"status": "error"},
    ]
    pooled = pool_released(results, 10)
    assert pooled["person_count"] == 65
    assert pooled["sex"] == {"Male": 30, "Female": 35}
    assert pooled["age"] == {"50-59": 65}
    assert pooled["trusts_released"] == 2


def test_pooled_total_is_thresholded_again() -> None:
    pooled = pool_released([{"status": "released", "person_count": 10, "sex": {"Male": 10}, "age": {}}], 11)
    assert pooled["person_count"] is None and pooled["sex"] == {}


def test_overall_status() -> None:
    assert overall_status(["released", "suppressed"]) == "complete"
    assert overall_status(["released", "timeout"]) == "partial"
    assert overall_status(["error", "timeout"]) == "failed"
    assert overall_status([]) == "failed"


counts = st.dictionaries(st.sampled_from(["Male", "Female", "Unknown", "Other"]), st.integers(0, 500))


@given(st.lists(counts, min_size=1, max_size=6), st.integers(10, 30))
def test_pooled_cells_are_zero_or_at_least_threshold_and_sum_to_total(
    tables: list[dict[str, int]], t: int
) -> None:
    results = [{"status": "released", "person_count": sum(c.values()), "sex": c, "age": c} for c in tables]
    pooled = pool_released(results, t)
    total = sum(add_counts(tables).values())
    if total < t:
        assert pooled["person_count"] is None
        return
    assert pooled["person_count"] == total
    for table in ("sex", "age"):
        assert sum(pooled[table].values()) == total
        assert all(v == 0 or v >= t for v in pooled[table].values())
