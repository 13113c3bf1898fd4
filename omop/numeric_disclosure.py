"""Disclosure control for numeric statistics: what a trust may release about a numeric column.

Per column a trust computes (in PostgreSQL, see ``trust_worker.numeric_sql``) the number of distinct persons
with a value, their mean, their centred sum of squares ``M2 = sum((x - mean)^2)`` and, when asked, counts
of persons on the hub's histogram grid. The rules here decide what of that leaves the trust
(:func:`protect_numeric`); the hub applies the same histogram rule again to the pooled result
(``hub_broker.numeric_pooling``).

The unit is the person, as everywhere else:

* Each person has **one value or none** for a column, decided person by person in PostgreSQL: a person
  whose rows hold several distinct values is counted as missing for that column (the researcher who
  wants those persons reduces to one value per person in the cohort SQL: latest, average...). No column
  status depends on whether a single person has a second value, which an earlier rule (refuse the whole
  column when any person had several values) did: that one person's data flipped the column's status.
* A summary is released only when ``n >= T`` persons have a value **and** the persons without a value
  (cohort persons - n, including persons with several values) are 0 or >= T, the non-null/null pair rule
  of ``omop.disclosure.protect_pair``: the cohort's person count is released too, so a small "missing"
  group would otherwise follow by subtraction. Both cases (and "all values null") give the same status
  and wording: ``suppressed``.
* Released: ``n``, ``mean`` and ``m2``. These are the sufficient statistics for pooling mean and variance
  exactly across trusts (Chan et al.); mean and variance of at least T persons are the standard
  aggregate release of federated statistics, like a count of at least T. The exact minimum and maximum are
  never computed, let alone released; the only bin edges are the hub's grid.
* Histogram bins follow the cell rule: every released bin count is 0 or >= T. Small bins are **merged with
  neighbouring bins** (never dropped), and so are empty ones (an empty bin next to a full one would tell
  where the data starts or stops: the minimum and maximum), so the released cells are contiguous ranges
  of the grid that partition all ``n`` values. Because they partition the released total, any figure
  obtained by adding or subtracting released figures is a sum of whole released cells and therefore 0 or
  >= T as well.

Released per-column shapes (the values of ``TrustResult.numeric``)::

    {"status": "released", "n": 412, "mean": 27.31, "m2": 10234.5,
     "histogram": {"lower": 15.0, "upper": 45.0, "bins": 10,
                   "cells": [{"first": 0, "last": 1, "count": 23}, ...]}}   # histogram only if requested
    {"status": "suppressed", "detail": NUMERIC_SUPPRESSED_DETAIL}
    {"status": "rejected", "reason_code": "out_of_range", "detail": "..."}   # a guard, see below
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from omop.disclosure import MIN_THRESHOLD, is_small
from omop.numeric_spec import MAX_BINS, MAX_COLUMN_NAME_BYTES, MAX_NUMERIC_COLUMNS, HistogramSpec
from omop.states import ColumnStatus, ReasonCode

#: The one wording of a withheld numeric column: identical for 0 persons, 1..T-1 persons, and a small
#: group of persons without a value.
NUMERIC_SUPPRESSED_DETAIL = "too few persons with (or without) a value in this column"

#: A guard only: the trust's SQL drops values beyond +/-1e100 per person, so PostgreSQL always returns a
#: finite mean and M2 and this status cannot be reached from data.
OUT_OF_RANGE = ReasonCode.OUT_OF_RANGE
OUT_OF_RANGE_DETAIL = "the values are too large to summarise in double precision"

#: A released histogram cell: bins ``first..last`` (inclusive) of the grid hold ``count`` values.
Cell = tuple[int, int, int]


def _require_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < MIN_THRESHOLD:
        raise ValueError(f"threshold must be an integer >= {MIN_THRESHOLD}, got {threshold!r}")
    return threshold


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_finite_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- histograms --------------------------------------------------------------------------------------------


def merge_cells(cells: Sequence[Cell], threshold: int) -> list[Cell]:
    """Merge neighbouring cells until every cell is 0 or >= ``threshold``; ``[]`` if the total is small.

    ``cells`` must be contiguous ranges in order (each ``first`` one past the previous ``last``). Repeatedly
    the smallest small cell (ties: leftmost) is merged with its nearest non-zero neighbour on one side,
    together with the zero cells in between. The side is chosen to keep the grid fine: the merge spanning
    fewer bins, then the smaller merged count, then the left. Zero cells are otherwise kept: a zero reveals
    nothing the total does not. Nothing is ever dropped, so the counts still add up to the total.
    """
    _require_threshold(threshold)
    work: list[Cell] = []
    for i, cell in enumerate(cells):
        first, last, count = cell
        if not (_is_count(first) and _is_count(last) and _is_count(count)) or last < first:
            raise ValueError(f"cell {i} is not a (first, last, count) triple of non-negative integers")
        if work and first != work[-1][1] + 1:
            raise ValueError("cells must be contiguous and in order")
        work.append((first, last, count))
    total = sum(c[2] for c in work)
    if is_small(total, threshold):
        return []
    while True:
        small = [(c[2], i) for i, c in enumerate(work) if is_small(c[2], threshold)]
        if not small:
            return [(c[0], c[1], c[2]) for c in work]
        _, i = min(small)
        left = i - 1
        while left >= 0 and work[left][2] == 0:
            left -= 1
        right = i + 1
        while right < len(work) and work[right][2] == 0:
            right += 1
        options: list[tuple[int, int, int, int, int]] = []
        for side, (a, b) in enumerate(((left, i), (i, right))):
            if 0 <= a and b < len(work):
                span = work[b][1] - work[a][0] + 1
                merged = sum(c[2] for c in work[a : b + 1])
                options.append((span, merged, side, a, b))
        # total >= T and this cell < T, so a non-zero cell exists on at least one side.
        _, merged, _, a, b = min(options)
        work[a : b + 1] = [(work[a][0], work[b][1], merged)]


def absorb_empty_cells(cells: Sequence[Cell]) -> list[Cell]:
    """Merge every empty cell into the non-empty cell before it (leading empty cells into the first one).

    Exact figures only: an empty bin next to a full one tells where the data stops, and on a fine grid the
    first and last non-empty bins would locate the minimum and the maximum. After this every cell holds
    someone, and each cell but the first starts at a bin holding at least one of its (>= T) persons, so no
    boundary marks an extreme value. (Noisy dp cells need none of this: every bin carries noise.)
    """
    out: list[Cell] = []
    for first, last, count in cells:
        if out and (count == 0 or out[-1][2] == 0):
            prev_first, _, prev_count = out[-1]
            out[-1] = (prev_first, last, prev_count + count)
        else:
            out.append((first, last, count))
    return out


def protect_histogram(counts: Sequence[int], threshold: int, merge_empty: bool = False) -> list[Cell]:
    """Protect per-bin ``counts``: contiguous cells ``(first_bin, last_bin, count)``, each 0 or >= T.

    The cells partition all bins and add up to ``sum(counts)``; ``[]`` when that total is 1..T-1 (nothing
    can be released). See :func:`merge_cells` for how neighbours are chosen; ``merge_empty`` (exact mode)
    also folds empty cells into their neighbours (:func:`absorb_empty_cells`).
    """
    cells = merge_cells([(i, i, c) for i, c in enumerate(counts)], threshold)
    return absorb_empty_cells(cells) if merge_empty else cells


def check_cells(cells: Sequence[Cell], bins: int, threshold: int) -> None:
    """Raise ``ValueError`` unless ``cells`` partition ``0..bins-1`` with every count 0 or >= T."""
    expected_first = 0
    for first, last, count in cells:
        if first != expected_first or last < first:
            raise ValueError("histogram cells must be contiguous ranges starting at bin 0")
        if not _is_count(count) or is_small(count, threshold):
            raise ValueError("every released histogram cell must be 0 or at least the threshold")
        expected_first = last + 1
    if expected_first != bins:
        raise ValueError(f"histogram cells must cover bins 0..{bins - 1}")


def cells_to_json(spec: HistogramSpec, cells: Sequence[Cell]) -> dict[str, Any]:
    """The released form of a protected histogram (grid plus cells by bin index)."""
    return {
        "lower": spec.lower,
        "upper": spec.upper,
        "bins": spec.bins,
        "cells": [{"first": f, "last": last, "count": c} for f, last, c in cells],
    }


def cells_from_json(histogram: object) -> tuple[HistogramSpec, list[Cell]]:
    """Inverse of :func:`cells_to_json`; ``ValueError`` for anything malformed."""
    if not isinstance(histogram, Mapping) or set(histogram) != {"lower", "upper", "bins", "cells"}:
        raise ValueError("a released histogram has exactly the keys lower, upper, bins and cells")
    try:
        spec = HistogramSpec.build(histogram["lower"], histogram["upper"], histogram["bins"])
    except Exception as exc:  # UsageError from the spec's own validation
        raise ValueError(f"histogram grid: {exc}") from None
    raw_cells = histogram["cells"]
    if not isinstance(raw_cells, list) or len(raw_cells) > MAX_BINS:
        raise ValueError("histogram cells must be a list of at most one cell per bin")
    cells: list[Cell] = []
    for cell in raw_cells:
        if not isinstance(cell, Mapping) or set(cell) != {"first", "last", "count"}:
            raise ValueError("a histogram cell has exactly the keys first, last and count")
        values = (cell["first"], cell["last"], cell["count"])
        if not all(_is_count(v) for v in values):
            raise ValueError("histogram cell fields must be non-negative integers")
        cells.append((cell["first"], cell["last"], cell["count"]))
    return spec, cells


# -- per-column release ------------------------------------------------------------------------------------


def suppressed_column() -> dict[str, Any]:
    return {"status": ColumnStatus.SUPPRESSED, "detail": NUMERIC_SUPPRESSED_DETAIL}


def rejected_column(reason_code: str, detail: str) -> dict[str, Any]:
    return {"status": ColumnStatus.REJECTED, "reason_code": reason_code, "detail": detail}


def protect_column(
    stats: Mapping[str, Any], cohort_persons: int, threshold: int, histogram: HistogramSpec | None = None
) -> dict[str, Any]:
    """What may be released about one column (see the module docstring for the rules and shapes).

    ``stats`` is one column of the raw statement output: ``persons`` (with one value each), ``mean``,
    ``m2`` and, when a histogram was requested, ``histogram`` (persons per bin of ``histogram``'s grid).
    """
    _require_threshold(threshold)
    persons = stats.get("persons")
    if not (_is_count(persons) and _is_count(cohort_persons)) or persons > cohort_persons:
        raise ValueError("raw numeric statistics need persons <= cohort_persons, both non-negative integers")
    if persons < threshold or is_small(cohort_persons - persons, threshold):
        return suppressed_column()
    mean, m2 = stats.get("mean"), stats.get("m2")
    if not (_is_finite_number(mean) and _is_finite_number(m2)):
        return rejected_column(OUT_OF_RANGE, OUT_OF_RANGE_DETAIL)
    released: dict[str, Any] = {
        "status": ColumnStatus.RELEASED,
        "n": persons,
        "mean": float(mean),
        "m2": max(0.0, float(m2)),
    }
    if histogram is not None:
        counts = stats.get("histogram")
        if not isinstance(counts, list) or len(counts) != histogram.bins or not all(map(_is_count, counts)):
            raise ValueError(f"raw histogram must hold {histogram.bins} non-negative integer counts")
        if sum(counts) != persons:
            raise ValueError("raw histogram counts do not add up to the column's persons")
        released["histogram"] = cells_to_json(
            histogram, protect_histogram(counts, threshold, merge_empty=True)
        )
    return released


def protect_numeric(
    raw: Mapping[str, Any], threshold: int, histograms: Mapping[str, HistogramSpec] | None = None
) -> dict[str, dict[str, Any]]:
    """Apply the numeric disclosure rules to the raw statement output; the result is ``TrustResult.numeric``.

    ``raw`` is what ``trust_worker.numeric_sql.numeric_statistics_sql`` returns:
    ``{"cohort_persons": int, "columns": {column: {"persons", "mean", "m2", "histogram"?}}}``.
    ``histograms`` is the request's grids (a column's raw histogram is protected on that grid). A column
    with too few persons is ``suppressed``; the cohort as a whole may still be released.
    """
    _require_threshold(threshold)
    columns = raw.get("columns")
    cohort_persons = raw.get("cohort_persons")
    if not isinstance(columns, Mapping) or not _is_count(cohort_persons):
        raise ValueError("raw numeric statistics need 'cohort_persons' and 'columns'")
    grids = histograms or {}
    return {
        name: protect_column(stats, cohort_persons, threshold, grids.get(name))
        for name, stats in columns.items()
    }


# -- the contract, checked on a released result ------------------------------------------------------------


def check_released_column(entry: object, threshold: int, histogram_adds_up: bool = True) -> None:
    """Raise ``ValueError`` unless ``entry`` is a well-formed column of ``TrustResult.numeric``.

    Released figures: ``n >= T``, finite ``mean``, finite ``m2 >= 0``, and a histogram whose cells partition
    the grid with every count 0 or >= T and add up to ``n``. Nothing else (no min, max or row counts).
    """
    if not isinstance(entry, Mapping):
        raise ValueError("a numeric column entry must be an object")
    status = entry.get("status")
    if status == ColumnStatus.SUPPRESSED:
        if set(entry) != {"status", "detail"} or not isinstance(entry["detail"], str):
            raise ValueError("a suppressed numeric column carries only status and detail")
        return
    if status == ColumnStatus.REJECTED:
        if set(entry) != {"status", "reason_code", "detail"}:
            raise ValueError("a rejected numeric column carries only status, reason_code and detail")
        if not isinstance(entry["reason_code"], str) or not isinstance(entry["detail"], str):
            raise ValueError("reason_code and detail of a rejected numeric column must be strings")
        return
    if status != ColumnStatus.RELEASED:
        raise ValueError(f"unknown numeric column status {status!r}")
    keys = set(entry)
    if not {"status", "n", "mean", "m2"} <= keys <= {"status", "n", "mean", "m2", "histogram"}:
        raise ValueError("a released numeric column carries exactly n, mean, m2 and optionally histogram")
    n, mean, m2 = entry["n"], entry["mean"], entry["m2"]
    if not _is_count(n) or n < threshold:
        raise ValueError("a released numeric column needs n at or above the threshold")
    if not _is_finite_number(mean):
        raise ValueError("a released mean must be a finite number")
    if not _is_finite_number(m2) or m2 < 0:
        raise ValueError("a released m2 must be a finite non-negative number")
    if "histogram" in entry:
        spec, cells = cells_from_json(entry["histogram"])
        check_cells(cells, spec.bins, threshold)
        if histogram_adds_up and sum(c[2] for c in cells) != n:
            raise ValueError("released histogram counts must add up to n")


def check_released_numeric(numeric: object, threshold: int, histogram_adds_up: bool = True) -> None:
    """Raise ``ValueError`` unless ``numeric`` is a valid ``TrustResult.numeric`` under ``threshold``.

    ``histogram_adds_up=False`` for noisy (dp) answers: each cell and ``n`` carry their own noise.

    Meant for ``TrustResult``'s validator (and used by the hub's pooling to skip anything malformed).
    """
    _require_threshold(threshold)
    if not isinstance(numeric, Mapping):
        raise ValueError("numeric must be an object mapping column names to entries")
    if len(numeric) > MAX_NUMERIC_COLUMNS:
        raise ValueError(f"numeric may describe at most {MAX_NUMERIC_COLUMNS} columns")
    for name, entry in numeric.items():
        if not isinstance(name, str) or not name or len(name.encode("utf-8")) > MAX_COLUMN_NAME_BYTES:
            raise ValueError("numeric column names must be non-empty strings of at most 63 bytes")
        try:
            check_released_column(entry, threshold, histogram_adds_up)
        except ValueError as exc:
            raise ValueError(f"numeric.{name}: {exc}") from None
