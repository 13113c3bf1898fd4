"""What a trust in dp mode releases: the raw in-database figures, noised, then the usual disclosure rules.

Pure given a :class:`~omop.differential_privacy.NoisePlan` (OpenDP does the sampling). The steps, in order:

1. Noise every figure of every group the plan covers, including categories and histogram bins that hold
   nobody: which cells exist never depends on the data (all of ``SEX_LABELS``, all of ``AGE_BANDS``, every
   bin of the grid).
2. Post-process the noisy values only: round, clamp at 0, and apply the threshold and merging rules to
   them (a noisy person count under T releases nothing; no released count is 1..T-1; small categories
   and bins are merged). Post-processing cannot weaken differential privacy, and the released shapes stay
   the ones the hub and ``TrustResult`` already check.

   The exact-mode rules that compare *two* figures are not applied: the row rule (rows minus persons
   small) and the pair rules (non-null vs null, persons with a value vs the cohort). They exist because a
   difference of exact figures is exact; a difference of noisy figures is noisy. Applied to noise, they
   would withhold figures at random (a cohort where everyone has a value gives ``persons - n`` of a few
   units either way) while protecting nothing the noise does not already protect.

A noisy figure is never compared with its exact value here, so nothing released depends on the data
except through the noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omop.demographics import AGE_BANDS, SEX_LABELS, in_order
from omop.differential_privacy import NoisePlan
from omop.disclosure import SUPPRESSED_DETAIL, decide, is_small, protect_distribution
from omop.numeric_disclosure import (
    ReleasedHistogram,
    protect_histogram,
    released_column,
    released_histogram,
    suppressed_column,
)
from omop.numeric_spec import HistogramSpec
from omop.protocol import ColumnCounts
from omop.states import ResultStatus


def _noisy_table(
    plan: NoisePlan, group: str, counts: Mapping[str, int], labels: tuple[str, ...]
) -> dict[str, int]:
    """Every label of ``labels`` noised (absent ones as 0); unknown labels from the SQL cannot occur."""
    values = plan.noisy_ints(group, [int(counts.get(label, 0)) for label in labels])
    return {label: max(0, v) for label, v in zip(labels, values, strict=True)}


def _unless_small(count: int, threshold: int) -> int | None:
    """A noisy count, or ``None`` (withheld) when it is 1..T-1: no released count is ever small."""
    return None if is_small(count, threshold) else count


def noisy_cohort_figures(
    plan: NoisePlan,
    *,
    person_count: int,
    row_count: int,
    columns: Mapping[str, list[int]],
    sex: Mapping[str, int],
    age: Mapping[str, int],
    threshold: int,
) -> dict[str, Any]:
    """The released cohort figures in dp mode (``status`` and the ``TrustResult`` fields)."""
    (noisy_persons,) = plan.noisy_ints("person_count", [person_count])
    persons = max(0, noisy_persons)
    if not decide(persons, threshold):  # the noisy count decides, as the exact one does in exact mode
        return {"status": ResultStatus.SUPPRESSED, "detail": SUPPRESSED_DETAIL}
    names = list(columns)
    noisy_rows, *noisy_non_null = plan.noisy_ints(
        "rows", [row_count, *(int(columns[name][0]) for name in names)]
    )
    rows = max(0, noisy_rows)
    released_rows: int | None = None
    released_columns: dict[str, ColumnCounts] | None = None
    if rows >= threshold:
        released_rows = rows
        released_columns = {}
        for name, non_null in zip(names, noisy_non_null, strict=True):
            nn = min(max(0, non_null), rows)
            released_columns[name] = ColumnCounts(
                non_null=_unless_small(nn, threshold), null=_unless_small(rows - nn, threshold)
            )
    return {
        "status": ResultStatus.RELEASED,
        "detail": None,
        "person_count": persons,
        "row_count": released_rows,
        "columns": released_columns,
        "sex": in_order(
            protect_distribution(_noisy_table(plan, "sex", sex, SEX_LABELS), threshold), SEX_LABELS
        ),
        "age": in_order(
            protect_distribution(_noisy_table(plan, "age", age, AGE_BANDS), threshold), AGE_BANDS
        ),
    }


def noisy_numeric(
    plan: NoisePlan,
    raw: Mapping[str, Any],
    bounds: Mapping[str, tuple[float, float]],
    histograms: Mapping[str, HistogramSpec],
    threshold: int,
) -> dict[str, dict[str, Any]]:
    """Per column: noisy ``n``, and ``mean`` and ``m2`` derived from the noisy centred clamped sums.

    ``raw`` is what ``trust_worker.numeric_sql.clamped_statistics_sql`` returns. The mean is clamped into
    the bounds and ``m2`` into ``[0, n * half_width^2]``, the range the exact figures must lie in:
    post-processing that only removes impossible values. A column is released when its noisy ``n`` is at
    least T (the pair rule of exact mode does not apply to noisy figures, see the module docstring).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, stats in raw["columns"].items():
        lower, upper = bounds[name]
        mid, half = (lower + upper) / 2, (upper - lower) / 2
        (noisy_n,) = plan.noisy_ints(f"numeric.{name}.n", [int(stats["persons"])])
        noisy_sum, noisy_sumsq = (
            plan.noisy_floats(f"numeric.{name}.sum", [float(stats["sum"])])[0],
            plan.noisy_floats(f"numeric.{name}.sumsq", [float(stats["sumsq"])])[0],
        )
        n = max(0, noisy_n)
        if n < threshold:
            out[name] = suppressed_column()
            continue
        centred_mean = min(max(noisy_sum / n, -half), half)
        m2 = min(max(noisy_sumsq - noisy_sum * noisy_sum / n, 0.0), n * half * half)
        spec = histograms.get(name)
        histogram: ReleasedHistogram | None = None
        if spec is not None:
            noisy_bins = plan.noisy_ints(f"numeric.{name}.histogram", [int(c) for c in stats["histogram"]])
            # a noisy total of 1..T-1 cannot be split into releasable cells: it is released as one empty
            # cell over the whole grid, as any other small noisy count is not released as such
            cells = protect_histogram([max(0, c) for c in noisy_bins], threshold) or [(0, spec.bins - 1, 0)]
            histogram = released_histogram(spec, cells)
        out[name] = released_column(n, mid + centred_mean, m2, histogram)
    return out
