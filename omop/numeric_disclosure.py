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

Each shape is a pydantic model (:class:`ReleasedColumn`, :class:`SuppressedColumn`,
:class:`RejectedColumn`, the histogram :class:`ReleasedHistogram` of :class:`HistogramCell`), and a
column is one of them by its ``status`` (:data:`NumericColumn`). The trust builds every column it
releases through them, and :func:`check_released_numeric` validates what it receives with them; the
answer carries their JSON (``TrustResult.numeric``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from omop.disclosure import MIN_THRESHOLD, is_small
from omop.numeric_spec import (
    MAX_BINS,
    MAX_COLUMN_NAME_BYTES,
    MAX_NUMERIC_COLUMNS,
    HistogramSpec,
    explain,
    grid_problem,
)
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

# -- the released shapes -----------------------------------------------------------------------------------

Count = Annotated[int, Field(ge=0)]

_HISTOGRAM_KEYS = "a released histogram has exactly the keys lower, upper, bins and cells"
_CELLS = "histogram cells must be a list of at most one cell per bin"
_CELL_KEYS = "a histogram cell has exactly the keys first, last and count"
_CELL_FIELDS = "histogram cell fields must be non-negative integers"
_RELEASED_KEYS = "a released numeric column carries exactly n, mean, m2 and optionally histogram"
_RELEASED_FIELDS = {
    "n": "a released numeric column needs n at or above the threshold",
    "mean": "a released mean must be a finite number",
    "m2": "a released m2 must be a finite non-negative number",
}
_KEY_ERRORS = ("missing", "extra_forbidden", "model_type", "model_attributes_type", "dict_type")


class _Shape(BaseModel):
    """Strict like the protocol: no coercion, no unknown keys, no NaN or infinity, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class HistogramCell(_Shape):
    """Bins ``first..last`` (inclusive) of the grid hold ``count`` persons."""

    first: Count
    last: Count
    count: Count


class ReleasedHistogram(_Shape):
    """A released histogram: the grid (a valid :class:`HistogramSpec`) and its cells by bin index."""

    lower: float
    upper: float
    bins: int = Field(ge=1, le=MAX_BINS)
    cells: list[HistogramCell] = Field(max_length=MAX_BINS)

    @model_validator(mode="after")
    def _a_grid(self) -> ReleasedHistogram:
        self.grid  # noqa: B018 - raises if lower, upper and bins are no grid
        return self

    @property
    def grid(self) -> HistogramSpec:
        try:
            return HistogramSpec(lower=self.lower, upper=self.upper, bins=self.bins)
        except ValidationError as exc:
            raise ValueError(f"histogram grid: {explain(exc)}") from None

    def as_cells(self) -> list[Cell]:
        return [(c.first, c.last, c.count) for c in self.cells]


class ReleasedColumn(_Shape):
    """A released column: ``n`` persons with a value, their ``mean`` and ``m2``, a histogram if asked."""

    status: Literal[ColumnStatus.RELEASED]
    n: Count
    mean: float
    m2: float = Field(ge=0)
    histogram: ReleasedHistogram | None = None

    @field_validator("histogram", mode="before")
    @classmethod
    def _absent_not_null(cls, value: object) -> object:
        if value is None:  # a column without a histogram has no such key
            raise ValueError(_HISTOGRAM_KEYS)
        return value

    @model_serializer(mode="wrap")
    def _histogram_only_when_asked(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        doc: dict[str, Any] = handler(self)
        if self.histogram is None:  # absent, never null
            doc.pop("histogram", None)
        return doc


class SuppressedColumn(_Shape):
    """A withheld column: its status and :data:`NUMERIC_SUPPRESSED_DETAIL`, nothing else."""

    status: Literal[ColumnStatus.SUPPRESSED]
    detail: str


class RejectedColumn(_Shape):
    """A column the trust could not summarise (a guard: see :data:`OUT_OF_RANGE`)."""

    status: Literal[ColumnStatus.REJECTED]
    reason_code: str
    detail: str


#: One column of ``TrustResult.numeric``: which shape it has is its ``status``.
NumericColumn = Annotated[ReleasedColumn | SuppressedColumn | RejectedColumn, Field(discriminator="status")]
_COLUMN: TypeAdapter[ReleasedColumn | SuppressedColumn | RejectedColumn] = TypeAdapter(NumericColumn)
_HISTOGRAM: TypeAdapter[ReleasedHistogram] = TypeAdapter(ReleasedHistogram)


def _histogram_problem(loc: tuple[str | int, ...], kind: str, value: object, message: str) -> str:
    """What is wrong with a released histogram, from one pydantic error (``loc`` inside the histogram)."""
    if kind == "value_error":
        return message  # the grid's own rule (lower below upper, a finite width)
    if not loc or (kind in _KEY_ERRORS and len(loc) == 1):
        return _HISTOGRAM_KEYS
    if loc[0] == "cells":
        if len(loc) == 1:
            return _CELLS
        if len(loc) == 2 or kind in _KEY_ERRORS:
            return _CELL_KEYS
        return _CELL_FIELDS
    problem = grid_problem(loc[0], kind, value)
    return f"histogram grid: {problem}" if problem else _HISTOGRAM_KEYS


def _first_problem(exc: ValidationError) -> tuple[tuple[str | int, ...], str, object, str]:
    err = exc.errors(include_url=False)[0]
    message = str((err.get("ctx") or {}).get("error", err["msg"]))
    return tuple(err["loc"]), err["type"], err.get("input"), message


def _column_problem(entry: Mapping[str, Any], exc: ValidationError) -> str:
    """What is wrong with one numeric column, in the words of the release contract."""
    loc, kind, value, message = _first_problem(exc)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"unknown numeric column status {entry.get('status')!r}"
    shape, rest = loc[0], loc[1:]
    if shape == ColumnStatus.SUPPRESSED:
        return "a suppressed numeric column carries only status and detail"
    if shape == ColumnStatus.REJECTED:
        if kind in _KEY_ERRORS:
            return "a rejected numeric column carries only status, reason_code and detail"
        return "reason_code and detail of a rejected numeric column must be strings"
    if rest and rest[0] == "histogram":
        return _histogram_problem(rest[1:], kind, value, message)
    if rest and rest[0] in _RELEASED_FIELDS and kind not in _KEY_ERRORS:
        return _RELEASED_FIELDS[str(rest[0])]
    return _RELEASED_KEYS


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


def released_histogram(spec: HistogramSpec, cells: Sequence[Cell]) -> ReleasedHistogram:
    """The released form of a protected histogram (grid plus cells by bin index)."""
    return ReleasedHistogram(
        lower=spec.lower,
        upper=spec.upper,
        bins=spec.bins,
        cells=[HistogramCell(first=f, last=last, count=c) for f, last, c in cells],
    )


def cells_to_json(spec: HistogramSpec, cells: Sequence[Cell]) -> dict[str, Any]:
    """The JSON of :func:`released_histogram`."""
    return released_histogram(spec, cells).model_dump()


def parse_histogram(histogram: object) -> ReleasedHistogram:
    """A released histogram from its JSON; ``ValueError`` (one line) for anything malformed."""
    try:
        return _HISTOGRAM.validate_python(histogram)
    except ValidationError as exc:
        loc, kind, value, message = _first_problem(exc)
        raise ValueError(_histogram_problem(loc, kind, value, message)) from None


def cells_from_json(histogram: object) -> tuple[HistogramSpec, list[Cell]]:
    """Inverse of :func:`cells_to_json`; ``ValueError`` for anything malformed."""
    released = parse_histogram(histogram)
    return released.grid, released.as_cells()


# -- per-column release ------------------------------------------------------------------------------------


def suppressed_column() -> dict[str, Any]:
    return SuppressedColumn(status=ColumnStatus.SUPPRESSED, detail=NUMERIC_SUPPRESSED_DETAIL).model_dump()


def rejected_column(reason_code: str, detail: str) -> dict[str, Any]:
    return RejectedColumn(status=ColumnStatus.REJECTED, reason_code=reason_code, detail=detail).model_dump()


def released_column(
    n: int, mean: float, m2: float, histogram: ReleasedHistogram | None = None
) -> dict[str, Any]:
    """The JSON of a released column (``histogram`` only when one was asked for)."""
    fields: dict[str, Any] = {"status": ColumnStatus.RELEASED, "n": n, "mean": mean, "m2": m2}
    if histogram is not None:
        fields["histogram"] = histogram
    return ReleasedColumn(**fields).model_dump()


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
    cells: ReleasedHistogram | None = None
    if histogram is not None:
        counts = stats.get("histogram")
        if not isinstance(counts, list) or len(counts) != histogram.bins or not all(map(_is_count, counts)):
            raise ValueError(f"raw histogram must hold {histogram.bins} non-negative integer counts")
        if sum(counts) != persons:
            raise ValueError("raw histogram counts do not add up to the column's persons")
        cells = released_histogram(histogram, protect_histogram(counts, threshold, merge_empty=True))
    return released_column(persons, float(mean), max(0.0, float(m2)), cells)


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


def parse_column(entry: object) -> ReleasedColumn | SuppressedColumn | RejectedColumn:
    """One column of ``TrustResult.numeric`` as its model; ``ValueError`` (one line) if it has no shape."""
    if not isinstance(entry, Mapping):
        raise ValueError("a numeric column entry must be an object")
    try:
        return _COLUMN.validate_python(entry)
    except ValidationError as exc:
        raise ValueError(_column_problem(entry, exc)) from None


def check_released_column(
    entry: object, threshold: int, histogram_adds_up: bool = True
) -> ReleasedColumn | SuppressedColumn | RejectedColumn:
    """The column ``entry`` describes, or ``ValueError`` unless it is a well-formed column of
    ``TrustResult.numeric`` under ``threshold``.

    Released figures: ``n >= T``, finite ``mean``, finite ``m2 >= 0``, and a histogram whose cells partition
    the grid with every count 0 or >= T and add up to ``n``. Nothing else (no min, max or row counts).
    """
    column = parse_column(entry)
    if not isinstance(column, ReleasedColumn):
        return column
    if column.n < threshold:
        raise ValueError(_RELEASED_FIELDS["n"])
    if column.histogram is not None:
        cells = column.histogram.as_cells()
        check_cells(cells, column.histogram.bins, threshold)
        if histogram_adds_up and sum(c[2] for c in cells) != column.n:
            raise ValueError("released histogram counts must add up to n")
    return column


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
