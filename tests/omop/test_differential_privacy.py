"""The noise is what answers say it is, a plan never spends more than epsilon, releases keep the contract.

OpenDP samples from the operating system's secure randomness and cannot be seeded (on purpose: a seeded
sampler is a predictable one), so the goodness-of-fit tests draw many values and test at a significance
level of 1e-4: a correct sampler fails such a test once in ten thousand runs, a wrong scale every time.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omop.demographics import AGE_BANDS, SEX_LABELS
from omop.differential_privacy import (
    NoiseGroup,
    cohort_groups,
    discrete_laplace_variance,
    interval_half_width,
    numeric_groups,
    plan_noise,
    privacy_loss,
)
from omop.numeric_spec import HistogramSpec
from omop.protocol import PrivacyStatement, TrustResult
from omop.states import PrivacyMode, ResultStatus
from trust_worker.noisy_release import noisy_cohort_figures, noisy_numeric

DRAWS = 40_000
Z_1E4 = 3.719  # one-sided normal quantile for alpha = 1e-4


def chi2_critical(df: int) -> float:
    """Upper 1e-4 quantile of chi-square with ``df`` degrees of freedom (Wilson-Hilferty)."""
    return df * (1 - 2 / (9 * df) + Z_1E4 * math.sqrt(2 / (9 * df))) ** 3


def discrete_laplace_pmf(k: int, scale: float) -> float:
    q = math.exp(-1 / scale)
    return (1 - q) / (1 + q) * q ** abs(k)


@pytest.mark.parametrize("scale", [0.7, 2.5, 9.0])
def test_integer_noise_is_discrete_laplace_with_the_declared_scale(scale: float) -> None:
    plan = plan_noise(1 / scale, [NoiseGroup("g", 1, True, 1.0)])
    assert plan.scales["g"] == pytest.approx(scale, rel=1e-6)
    noise = plan.noisy_ints("g", [0] * DRAWS)
    assert all(isinstance(v, int) for v in noise)
    counts = Counter(noise)
    reach = max(1, int(scale * 4))
    statistic, df = 0.0, 0
    for k in range(-reach, reach + 1):
        expected = DRAWS * discrete_laplace_pmf(k, scale)
        statistic += (counts.get(k, 0) - expected) ** 2 / expected
        df += 1
    tail_p = 1 - sum(discrete_laplace_pmf(k, scale) for k in range(-reach, reach + 1))
    tail_seen = sum(c for k, c in counts.items() if abs(k) > reach)
    statistic += (tail_seen - DRAWS * tail_p) ** 2 / (DRAWS * tail_p)
    assert statistic < chi2_critical(df), f"chi2 {statistic:.1f} over {df} df"
    mean = sum(noise) / DRAWS
    variance = sum(v * v for v in noise) / DRAWS - mean**2
    assert variance == pytest.approx(discrete_laplace_variance(scale), rel=0.08)


def test_float_noise_is_laplace_with_the_declared_scale() -> None:
    scale = 30.0
    plan = plan_noise(1.0, [NoiseGroup("g", scale, False, 1.0)])
    assert plan.scales["g"] == pytest.approx(scale, rel=1e-6)
    noise = sorted(plan.noisy_floats("g", [0.0] * DRAWS))

    def cdf(x: float) -> float:
        return 0.5 * math.exp(x / scale) if x < 0 else 1 - 0.5 * math.exp(-x / scale)

    ks = max(max(abs((i + 1) / DRAWS - cdf(x)), abs(i / DRAWS - cdf(x))) for i, x in enumerate(noise))
    assert ks < 2.0 / math.sqrt(DRAWS)  # Kolmogorov-Smirnov at alpha ~ 6e-4


@settings(max_examples=60, deadline=None)
@given(
    epsilon=st.floats(0.01, 10),
    output_columns=st.integers(0, 40),
    max_rows=st.integers(1, 1000),
    numeric=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6), st.booleans()), max_size=6),
)
def test_a_plan_never_spends_more_than_epsilon_by_openDPs_own_privacy_map(
    epsilon: float, output_columns: int, max_rows: int, numeric: list[tuple[float, float, bool]]
) -> None:
    groups = cohort_groups(output_columns, max_rows)
    for i, (lower, width, histogram) in enumerate(numeric):
        groups += numeric_groups(f"c{i}", lower, lower + width, histogram)
    plan = plan_noise(epsilon, groups)
    spent = sum(privacy_loss(g, plan.scales[g.name]) for g in groups)
    assert spent <= epsilon * (1 + 1e-9)
    assert spent >= epsilon * 0.999  # and does not waste it
    # the person count always gets twice the share of any other group
    assert plan.scales["person_count"] == pytest.approx(plan.scales["sex"] / 2, rel=1e-6)


def test_a_nonsense_epsilon_is_refused() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="epsilon"):
            plan_noise(bad, cohort_groups(1, 10))


def test_the_interval_for_one_trust_is_the_exact_laplace_interval() -> None:
    # P(|X| > b ln 20) = 5 % for Laplace(b); wider than 1.96 sd = 2.77 b
    assert interval_half_width(2 * 3.0**2, 3.0) == pytest.approx(3.0 * math.log(20))
    assert interval_half_width(100.0) == pytest.approx(19.6, rel=1e-3)


counts = st.integers(0, 5000)


@settings(max_examples=150, deadline=None)
@given(
    persons=counts,
    extra_rows=st.integers(0, 5000),
    non_null=st.lists(st.floats(0, 1), max_size=4),
    sex=st.lists(counts, min_size=3, max_size=3),
    age=st.lists(counts, min_size=11, max_size=11),
    epsilon=st.floats(0.05, 5),
)
def test_noisy_cohort_figures_always_keep_the_release_contract(
    persons: int,
    extra_rows: int,
    non_null: list[float],
    sex: list[int],
    age: list[int],
    epsilon: float,
) -> None:
    rows = persons + extra_rows
    columns = {f"c{i}": [int(rows * f), rows - int(rows * f)] for i, f in enumerate(non_null)}
    plan = plan_noise(epsilon, cohort_groups(len(columns), 10))
    figures = noisy_cohort_figures(
        plan,
        person_count=persons,
        row_count=rows,
        columns=columns,
        sex=dict(zip(SEX_LABELS, sex, strict=True)),
        age=dict(zip(AGE_BANDS, age, strict=True)),
        threshold=10,
    )
    # TrustResult's validator is the contract: every released cell 0 or >= T, count >= T
    TrustResult(
        query_id="q",
        trust_id="t",
        threshold=10,
        produced_at=datetime.now(UTC),
        privacy=PrivacyStatement(mode=PrivacyMode.DP, epsilon=epsilon, scales=plan.scales),
        **figures,
    )
    if figures["status"] == "released":
        # every category is present (noised even when empty) unless merged into Other
        assert set(figures["sex"]) <= {*SEX_LABELS, "Other"}


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 3000),
    mean=st.floats(-50, 150),
    spread=st.floats(0, 40),
    bins=st.integers(1, 50),
)
def test_noisy_numeric_figures_keep_the_contract_and_stay_in_bounds(
    n: int, mean: float, spread: float, bins: int
) -> None:
    lower, upper = 10.0, 70.0
    mid = (lower + upper) / 2
    clamped = min(max(mean, lower), upper) - mid
    spec = HistogramSpec(lower=lower, upper=upper, bins=bins)
    raw = {
        "cohort_persons": n + 20,
        "columns": {
            "bmi": {
                "persons": n,
                "sum": clamped * n,
                "sumsq": (clamped**2 + min(spread, 30) ** 2) * n,
                "histogram": [n // bins] * (bins - 1) + [n - (n // bins) * (bins - 1)],
            }
        },
    }
    plan = plan_noise(1.0, cohort_groups(1, 10) + numeric_groups("bmi", lower, upper, True))
    numeric = noisy_numeric(plan, raw, {"bmi": (lower, upper)}, {"bmi": spec}, 10)
    TrustResult(
        query_id="q",
        trust_id="t",
        threshold=10,
        produced_at=datetime.now(UTC),
        status=ResultStatus.RELEASED,
        person_count=max(n + 20, 10),
        numeric=numeric,
        privacy=PrivacyStatement(mode=PrivacyMode.DP, epsilon=1.0, scales=plan.scales),
    )
    column = numeric["bmi"]
    if column["status"] == "released":
        assert lower <= column["mean"] <= upper
        assert 0 <= column["m2"] <= column["n"] * ((upper - lower) / 2) ** 2
