"""What a researcher asks for when requesting numeric statistics, shared by the hub and every trust.

A numeric request names output columns of the cohort (``--numeric bmi,systolic_bp``; ``None`` means every
numeric output column that is not an id) and, optionally, a histogram grid per column
(``--histogram bmi=15:45:10``). The hub chooses the grid, never the data: every trust bins on exactly the
same edges, so per-trust histograms can be added up, and no released edge is a data value (no minimum or
maximum ever leaves a trust).

Histogram geometry (hub and trusts agree on it through :class:`HistogramSpec`): ``lower:upper:bins``
divides ``[lower, upper)`` into ``bins`` equal bins of width ``w = (upper - lower) / bins``, numbered
``0 .. bins-1``. The two edge bins are open-ended: bin 0 is ``(-inf, lower + w)`` and bin ``bins-1`` is
``[upper - w, +inf)``, so a value below ``lower`` counts in bin 0 and a value at or above ``upper`` in the
last bin. Interior bin ``i`` is ``[lower + i*w, lower + (i+1)*w)``. There are no extra under/overflow bins:
``bins`` is the number of bins the researcher gets (before disclosure merging). In JSON the open ends are
``null``. With ``bins = 1`` the single bin is ``(-inf, +inf)``.

The request travels to the trusts inside ``CohortTask.options`` as one JSON string under the key
:data:`OPTION_KEY` (options carry only scalars and flat lists, and a JSON string keeps the nested request
exact: Python's float repr round-trips).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omop.errors import UsageError

#: The most bins one histogram may have: enough for any sensible plot, small enough that the statement and
#: the released figures stay bounded (and most bins of a huge grid would be merged away anyway).
MAX_BINS = 1000

#: The most columns one request may summarise (keeps the generated statement and the result bounded).
MAX_NUMERIC_COLUMNS = 64

#: PostgreSQL truncates identifiers to 63 bytes, so no output column can have a longer name.
MAX_COLUMN_NAME_BYTES = 63

#: The ``CohortTask.options`` key under which the request travels, as a JSON string.
OPTION_KEY = "numeric"

PERSON_ID = "person_id"


def is_id_column(name: str) -> bool:
    """``person_id`` and every name ending in ``_id``: identifiers, never summarised by default."""
    return name == PERSON_ID or name.endswith("_id")


def check_column_name(name: object) -> str:
    """``name`` if it can be an output column name of a cohort, else a one-line ``UsageError``."""
    if not isinstance(name, str) or not name:
        raise UsageError("a numeric column name must be a non-empty string")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UsageError(f"numeric column name {name!r} contains a control character")
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_COLUMN_NAME_BYTES:
        raise UsageError(f"numeric column name {name[:20]!r}... is longer than {MAX_COLUMN_NAME_BYTES} bytes")
    return name


def _finite(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"histogram {what} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise UsageError(f"histogram {what} must be a finite number, not {value!r}")
    return number


@dataclass(frozen=True)
class HistogramSpec:
    """A shared histogram grid: ``bins`` equal bins over ``[lower, upper)``, edge bins open-ended.

    Construction validates: finite bounds, ``lower < upper`` with a finite width, ``1 <= bins <= MAX_BINS``.
    Errors are ``UsageError`` with a one-line message.
    """

    lower: float
    upper: float
    bins: int

    def __post_init__(self) -> None:
        lower = _finite("lower bound", self.lower)
        upper = _finite("upper bound", self.upper)
        if isinstance(self.bins, bool) or not isinstance(self.bins, int):
            raise UsageError(f"histogram bin count must be an integer, not {self.bins!r}")
        if lower >= upper:
            raise UsageError(f"histogram lower bound {lower:g} must be below the upper bound {upper:g}")
        if not math.isfinite(upper - lower):
            raise UsageError("histogram range is too wide to compute bin widths")
        if not 1 <= self.bins <= MAX_BINS:
            raise UsageError(f"histogram bin count must be between 1 and {MAX_BINS} (got {self.bins})")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def width(self) -> float:
        return (self.upper - self.lower) / self.bins

    def edge(self, i: int) -> float:
        """The nominal edge ``i`` (0 = lower, bins = upper) of the grid."""
        if i <= 0:
            return self.lower
        if i >= self.bins:
            return self.upper
        return self.lower + (self.upper - self.lower) * i / self.bins

    def cell_bounds(self, first: int, last: int) -> tuple[float | None, float | None]:
        """Bounds of the merged cell of bins ``first..last`` (inclusive); ``None`` for an open end."""
        return (
            None if first == 0 else self.edge(first),
            None if last == self.bins - 1 else self.edge(last + 1),
        )

    def nominal_bounds(self, first: int, last: int) -> tuple[float, float]:
        """Like :meth:`cell_bounds`, open ends clamped to ``lower`` / ``upper`` (for interpolation)."""
        return (self.edge(first), self.edge(last + 1))

    def to_json(self) -> list[float | int]:
        return [self.lower, self.upper, self.bins]

    @classmethod
    def from_json(cls, value: object) -> HistogramSpec:
        if not isinstance(value, list) or len(value) != 3:
            raise UsageError("a histogram must be [lower, upper, bins]")
        lower, upper, bins = value
        return cls(lower, upper, bins)

    def __str__(self) -> str:
        return f"{self.lower!r}:{self.upper!r}:{self.bins}"


def _parse_number(what: str, text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--histogram {option!r}: {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--histogram {option!r}: {what} must be a finite number")
    return value


def parse_histogram_option(option: str) -> tuple[str, HistogramSpec]:
    """Parse ``COLUMN=LOWER:UPPER:BINS`` (for example ``bmi=15:45:10``) into the column and its grid.

    The column is everything before the last ``=`` (so a quoted output name may contain ``=``).
    Raises ``UsageError`` with a one-line message naming the problem.
    """
    column, sep, grid = option.rpartition("=")
    column = column.strip()
    if not sep or not column:
        raise UsageError(
            f"--histogram {option!r}: expected COLUMN=LOWER:UPPER:BINS, for example bmi=15:45:10"
        )
    parts = grid.split(":")
    if len(parts) != 3:
        raise UsageError(f"--histogram {option!r}: expected LOWER:UPPER:BINS after '=', for example 15:45:10")
    lower = _parse_number("lower bound", parts[0], option)
    upper = _parse_number("upper bound", parts[1], option)
    bins_text = parts[2].strip()
    if not (bins_text.isascii() and bins_text.isdigit()):
        raise UsageError(f"--histogram {option!r}: bin count {bins_text!r} is not a positive whole number")
    bins = int(bins_text)
    try:
        spec = HistogramSpec(lower, upper, bins)
    except UsageError as exc:
        raise UsageError(f"--histogram {option!r}: {exc}") from None
    return check_column_name(column), spec


def parse_numeric_option(option: str) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Parse ``bmi:10:70,systolic_bp`` into column names and the bounds declared for some of them.

    ``NAME:LOWER:UPPER`` declares that the column's values are clamped to ``[LOWER, UPPER]`` (what a trust in
    dp mode needs to calibrate its noise); a bare ``NAME`` declares none. Whitespace around names is
    ignored; a column may be named once.
    """
    parts = [part.strip() for part in option.split(",")]
    if not option.strip() or any(not part for part in parts):
        raise UsageError(
            f"--numeric {option!r}: give comma-separated column names, for example bmi:10:70,systolic_bp"
        )
    names: list[str] = []
    bounds: dict[str, tuple[float, float]] = {}
    for part in parts:
        pieces = part.split(":")
        if len(pieces) == 1:
            names.append(part)
            continue
        if len(pieces) != 3 or not pieces[0].strip():
            raise UsageError(f"--numeric {part!r}: expected NAME or NAME:LOWER:UPPER, for example bmi:10:70")
        name = pieces[0].strip()
        lower, upper = (_parse_bound(text, part) for text in pieces[1:])
        if lower >= upper:
            raise UsageError(
                f"--numeric {part!r}: lower bound {lower:g} must be below the upper bound {upper:g}"
            )
        names.append(name)
        bounds[name] = (lower, upper)
    return list(_unique(names, "--numeric")), bounds


#: Declared bounds beyond this are refused: noise is scaled to the bounds' width, so such bounds would
#: bury every sum in noise, and their squares must stay far inside double precision.
MAX_BOUND = 1e9


def _parse_bound(text: str, part: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--numeric {part!r}: bound {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > MAX_BOUND:
        raise UsageError(f"--numeric {part!r}: bounds must be finite numbers within +/-{MAX_BOUND:g}")
    return value


def _unique(names: Iterable[str], where: str) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        check_column_name(name)
        if name in seen:
            raise UsageError(f"{where}: column {name!r} is named twice")
        seen.append(name)
    if len(seen) > MAX_NUMERIC_COLUMNS:
        raise UsageError(
            f"{where}: at most {MAX_NUMERIC_COLUMNS} numeric columns per query (got {len(seen)})"
        )
    return tuple(seen)


@dataclass(frozen=True)
class NumericRequest:
    """Numeric statistics wanted from every trust.

    ``columns``: the output columns to summarise, or ``None`` for every numeric output column that is not
    an id (:func:`is_id_column`). ``histograms``: a grid per column; a histogram column must be one of
    ``columns`` when those are listed.
    """

    columns: tuple[str, ...] | None = None
    histograms: Mapping[str, HistogramSpec] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.columns is not None:
            if isinstance(self.columns, str) or not isinstance(self.columns, Sequence):
                raise UsageError("numeric columns must be a list of names")
            if not self.columns:
                raise UsageError("a numeric request with an explicit column list needs at least one column")
            object.__setattr__(self, "columns", _unique(self.columns, "--numeric"))
        if not isinstance(self.histograms, Mapping):
            raise UsageError("numeric histograms must map column names to grids")
        for name, spec in self.histograms.items():
            check_column_name(name)
            if not isinstance(spec, HistogramSpec):
                raise UsageError(f"histogram of {name!r} is not a histogram grid")
            if self.columns is not None and name not in self.columns:
                raise UsageError(
                    f"--histogram names column {name!r}, which is not among the --numeric columns "
                    f"({', '.join(self.columns)})"
                )
        if len(self.histograms) > MAX_NUMERIC_COLUMNS:
            raise UsageError(f"at most {MAX_NUMERIC_COLUMNS} histograms per query")
        object.__setattr__(self, "histograms", dict(self.histograms))
        if not isinstance(self.bounds, Mapping) or len(self.bounds) > MAX_NUMERIC_COLUMNS:
            raise UsageError(f"numeric bounds must map at most {MAX_NUMERIC_COLUMNS} column names to bounds")
        checked: dict[str, tuple[float, float]] = {}
        for name, pair in self.bounds.items():
            check_column_name(name)
            if self.columns is not None and name not in self.columns:
                raise UsageError(f"bounds given for {name!r}, which is not among the --numeric columns")
            if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                raise UsageError(f"bounds of {name!r} must be [lower, upper]")
            lower, upper = (_checked_bound(name, v) for v in pair)
            if lower >= upper:
                raise UsageError(f"bounds of {name!r}: lower {lower:g} must be below upper {upper:g}")
            checked[name] = (lower, upper)
        object.__setattr__(self, "bounds", checked)

    @classmethod
    def from_cli(cls, numeric: str | None, histograms: Sequence[str] = ()) -> NumericRequest:
        """Build a request from ``--numeric`` (or None) and repeated ``--histogram`` options."""
        columns: tuple[str, ...] | None = None
        bounds: dict[str, tuple[float, float]] = {}
        if numeric is not None:
            names, bounds = parse_numeric_option(numeric)
            columns = tuple(names)
        grids: dict[str, HistogramSpec] = {}
        for option in histograms:
            name, spec = parse_histogram_option(option)
            if name in grids:
                raise UsageError(f"--histogram: column {name!r} has two histograms")
            grids[name] = spec
        return cls(columns, grids, bounds)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "columns": list(self.columns) if self.columns is not None else None,
            "histograms": {name: spec.to_json() for name, spec in sorted(self.histograms.items())},
        }
        if self.bounds:  # absent when none are declared: what trusts before dp mode understand
            doc["bounds"] = {name: list(pair) for name, pair in sorted(self.bounds.items())}
        return doc

    def to_options(self) -> dict[str, str]:
        """The ``CohortTask.options`` entry: ``{"numeric": "<canonical JSON of the request>"}``."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return {OPTION_KEY: text}

    @classmethod
    def from_json(cls, doc: object) -> NumericRequest:
        if not isinstance(doc, dict) or not {"columns", "histograms"} <= set(doc) <= {
            "columns",
            "histograms",
            "bounds",
        }:
            raise UsageError(
                "a numeric request must be an object with 'columns', 'histograms' (and 'bounds')"
            )
        bounds = doc.get("bounds", {})
        if not isinstance(bounds, dict):
            raise UsageError("numeric 'bounds' must be an object")
        columns = doc["columns"]
        if columns is not None and not isinstance(columns, list):
            raise UsageError("numeric 'columns' must be a list of names or null")
        grids = doc["histograms"]
        if not isinstance(grids, dict):
            raise UsageError("numeric 'histograms' must be an object")
        return cls(
            tuple(columns) if columns is not None else None,
            {check_column_name(name): HistogramSpec.from_json(spec) for name, spec in grids.items()},
            bounds,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> NumericRequest | None:
        """The request carried in task options, ``None`` if the task asks for no numeric statistics.

        Anything malformed raises ``UsageError`` (a trust answers it with a ``rejected`` status).
        """
        if OPTION_KEY not in options:
            return None
        text = options[OPTION_KEY]
        if not isinstance(text, str):
            raise UsageError(f"task option {OPTION_KEY!r} must be a JSON string")
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise UsageError(f"task option {OPTION_KEY!r} is not valid JSON") from None
        return cls.from_json(doc)


def _checked_bound(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"bounds of {name!r} must be numbers, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_BOUND:
        raise UsageError(f"bounds of {name!r} must be finite numbers within +/-{MAX_BOUND:g}")
    return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def precheck_columns(request: NumericRequest, output_columns: Sequence[str]) -> None:
    """Hub-side check against the validated cohort's output columns (types are only known at a trust).

    Raises ``UsageError`` for a requested or histogram column the cohort does not output, and for
    ``person_id`` (the unit of disclosure control, never a measurement).
    """
    named = list(request.columns or ()) + [n for n in request.histograms if n not in (request.columns or ())]
    for name in named:
        if name == PERSON_ID:
            raise UsageError("person_id identifies persons; it cannot be summarised as a numeric column")
        if name not in output_columns:
            raise UsageError(
                f"the cohort has no output column {name!r} (its columns: {', '.join(output_columns)})"
            )
