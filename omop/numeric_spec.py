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

The request is a pydantic model (:class:`NumericRequest`, grids :class:`HistogramSpec`) and travels to the
trusts as the signed task's ``CohortTask.numeric`` field, validated like every other field of the task. On
the wire (and in the hub store's ``options``, :meth:`NumericRequest.to_options`) it is the JSON object
``{"columns": [...] | null, "histograms": {column: [lower, upper, bins]}, "bounds": {column: [lower,
upper]}}``, ``bounds`` absent when none are declared; Python's float repr round-trips, so the request is
exact. The models' own constructors raise pydantic's ``ValidationError``; :meth:`HistogramSpec.build`,
:meth:`NumericRequest.build` and :meth:`NumericRequest.from_cli` (the command line) raise ``UsageError``
with a one-line message instead, in the words these rules have always had.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from omop.errors import UsageError

#: The most bins one histogram may have: enough for any sensible plot, small enough that the statement and
#: the released figures stay bounded (and most bins of a huge grid would be merged away anyway).
MAX_BINS = 1000

#: The most columns one request may summarise (keeps the generated statement and the result bounded).
MAX_NUMERIC_COLUMNS = 64

#: PostgreSQL truncates identifiers to 63 bytes, so no output column can have a longer name.
MAX_COLUMN_NAME_BYTES = 63

#: The key of the hub store's ``options`` under which a query's request is kept, as a JSON string.
OPTION_KEY = "numeric"

PERSON_ID = "person_id"

#: Declared bounds beyond this are refused: noise is scaled to the bounds' width, so such bounds would
#: bury every sum in noise, and their squares must stay far inside double precision.
MAX_BOUND = 1e9


def is_id_column(name: str) -> bool:
    """``person_id`` and every name ending in ``_id``: identifiers, never summarised by default."""
    return name == PERSON_ID or name.endswith("_id")


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "a numeric column name must be a non-empty string"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"numeric column name {name!r} contains a control character"
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_COLUMN_NAME_BYTES:
        return f"numeric column name {name[:20]!r}... is longer than {MAX_COLUMN_NAME_BYTES} bytes"
    return None


def check_column_name(name: object) -> str:
    """``name`` if it can be an output column name of a cohort, else a one-line ``UsageError``."""
    problem = _name_problem(name)
    if problem is not None:
        raise UsageError(problem)
    assert isinstance(name, str)
    return name


def _column_name(name: str) -> str:
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


#: An output column name of a cohort: non-empty, no control characters, at most 63 bytes.
ColumnName = Annotated[str, Field(min_length=1), AfterValidator(_column_name)]

#: A declared clamping bound (dp mode): a finite number within +/- ``MAX_BOUND``.
Bound = Annotated[float, Field(ge=-MAX_BOUND, le=MAX_BOUND)]
BoundPair = tuple[Bound, Bound]


class _Spec(BaseModel):
    """Strict like the protocol's messages: no coercion, no unknown fields, no NaN or infinity, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


# -- the one-line messages ---------------------------------------------------------------------------------
# Pydantic checks the fields' types and constraints; these say what broke in the words users have always
# read (``--histogram 'bmi=15:45:0': histogram bin count must be between 1 and 1000 (got 0)``).

_BOUND_NAMES = {"lower": "lower bound", "upper": "upper bound"}
_REQUEST_SHAPE = "a numeric request must be an object with 'columns', 'histograms' (and 'bounds')"
_GRID_SHAPE = "a histogram must be [lower, upper, bins]"


def grid_problem(field: object, kind: str, value: object) -> str | None:
    """The message for a pydantic error of kind ``kind`` on ``field`` of a grid (None: not a grid field)."""
    if field in _BOUND_NAMES:
        what = _BOUND_NAMES[str(field)]
        if kind == "finite_number":
            return f"histogram {what} must be a finite number, not {value!r}"
        return f"histogram {what} must be a number, not {value!r}"
    if field == "bins":
        if kind in ("greater_than_equal", "less_than_equal"):
            return f"histogram bin count must be between 1 and {MAX_BINS} (got {value})"
        return f"histogram bin count must be an integer, not {value!r}"
    return None


_SHAPE_ERRORS = ("missing", "extra_forbidden", "model_type", "model_attributes_type")


def _request_problem(
    loc: tuple[str | int, ...], kind: str, value: object, ctx: Mapping[str, Any], document: bool
) -> str:
    field, rest = (loc[0], loc[1:]) if loc else ("", ())
    if kind in _SHAPE_ERRORS and len(loc) <= 1:
        return _REQUEST_SHAPE
    if document and not rest and kind in ("tuple_type", "dict_type"):  # a JSON document's own wording
        what = "a list of names or null" if field == "columns" else "an object"
        return f"numeric {field!r} must be {what}"
    if field == "columns":
        if rest:
            return _name_problem(value) or "a numeric column name must be a non-empty string"
        if kind == "too_short":
            return "a numeric request with an explicit column list needs at least one column"
        if kind == "too_long":
            return (
                f"--numeric: at most {MAX_NUMERIC_COLUMNS} numeric columns per query "
                f"(got {ctx.get('actual_length')})"
            )
        return "numeric columns must be a list of names"
    if field == "histograms":
        if not rest:
            if kind == "too_long":
                return f"at most {MAX_NUMERIC_COLUMNS} histograms per query"
            return "numeric histograms must map column names to grids"
        name = rest[0]
        if rest[1:] == ("[key]",):
            return _name_problem(value) or "a numeric column name must be a non-empty string"
        if len(rest) == 1:
            if isinstance(value, list | tuple):
                return _GRID_SHAPE
            return f"histogram of {name!r} is not a histogram grid"
        return grid_problem(rest[1], kind, value) or _GRID_SHAPE
    if field == "bounds":
        if not rest:
            return f"numeric bounds must map at most {MAX_NUMERIC_COLUMNS} column names to bounds"
        name = rest[0]
        if rest[1:] == ("[key]",):
            return _name_problem(value) or "a numeric column name must be a non-empty string"
        if len(rest) == 1 or kind == "missing":
            return f"bounds of {name!r} must be [lower, upper]"
        if kind == "float_type":
            return f"bounds of {name!r} must be numbers, not {value!r}"
        return f"bounds of {name!r} must be finite numbers within +/-{MAX_BOUND:g}"
    return _REQUEST_SHAPE


def explain(exc: ValidationError, document: bool = False) -> str:
    """The one-line message for the first problem of a request's (or a grid's) ``ValidationError``.

    ``document``: the request was read from a JSON document, whose keys are checked first.
    """
    errors = exc.errors(include_url=False)
    shape = [e for e in errors if e["type"] in _SHAPE_ERRORS and len(e["loc"]) <= 1]
    err = shape[0] if document and shape else errors[0]
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "value_error" and not (len(loc) == 2 and loc[0] == "histograms"):
        return str(ctx.get("error", err["msg"]))  # a rule of our own (a validator below): as it is
    if kind == "json_invalid":
        return f"task option {OPTION_KEY!r} is not valid JSON"
    if exc.title == HistogramSpec.__name__:
        return grid_problem(loc[0] if loc else "", kind, value) or _GRID_SHAPE
    return _request_problem(loc, kind, value, ctx, document)


# -- the models --------------------------------------------------------------------------------------------


class HistogramSpec(_Spec):
    """A shared histogram grid: ``bins`` equal bins over ``[lower, upper)``, edge bins open-ended.

    Finite bounds, ``lower < upper`` with a finite width, ``1 <= bins <= MAX_BINS``
    (:meth:`build` says which rule a grid breaks in one line).
    """

    lower: float
    upper: float
    bins: int = Field(ge=1, le=MAX_BINS)

    @classmethod
    def build(cls, lower: object, upper: object, bins: object) -> HistogramSpec:
        """The grid ``lower:upper:bins``, or a one-line ``UsageError`` saying what is wrong with it."""
        try:
            return cls.model_validate({"lower": lower, "upper": upper, "bins": bins})
        except ValidationError as exc:
            raise UsageError(explain(exc)) from None

    @field_validator("upper")
    @classmethod
    def _above_lower(cls, upper: float, info: ValidationInfo) -> float:
        lower = info.data.get("lower")
        if lower is None:  # the lower bound has its own error
            return upper
        if lower >= upper:
            raise ValueError(f"histogram lower bound {lower:g} must be below the upper bound {upper:g}")
        if not math.isfinite(upper - lower):
            raise ValueError("histogram range is too wide to compute bin widths")
        return upper

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

    def __str__(self) -> str:
        return f"{self.lower!r}:{self.upper!r}:{self.bins}"


def _grid_from_list(value: object) -> object:
    """A grid travels as ``[lower, upper, bins]``; anything else but a ``HistogramSpec`` is refused."""
    if isinstance(value, HistogramSpec):
        return value
    if isinstance(value, list | tuple) and len(value) == 3:
        lower, upper, bins = value
        return {"lower": lower, "upper": upper, "bins": bins}
    raise ValueError(_GRID_SHAPE)


def _grid_as_list(spec: HistogramSpec) -> list[float | int]:
    return [spec.lower, spec.upper, spec.bins]


#: A grid as a request carries it: ``[lower, upper, bins]`` in JSON.
Grid = Annotated[
    HistogramSpec,
    BeforeValidator(_grid_from_list),
    PlainSerializer(_grid_as_list, return_type=list[float | int]),
]


class NumericRequest(_Spec):
    """Numeric statistics wanted from every trust.

    ``columns``: the output columns to summarise, or ``None`` for every numeric output column that is not
    an id (:func:`is_id_column`). ``histograms``: a grid per column; a histogram column must be one of
    ``columns`` when those are listed. ``bounds``: the clamping range declared for some columns (dp mode),
    also among ``columns`` when those are listed.

    In JSON (a task, the hub store) ``columns`` (possibly ``null``) and ``histograms`` must both be present;
    in Python they default to ``None`` and ``{}``. Lists do for tuples (JSON has only arrays).
    :meth:`build` raises a one-line ``UsageError`` for anything invalid.
    """

    columns: tuple[ColumnName, ...] | None = Field(default=None, min_length=1, max_length=MAX_NUMERIC_COLUMNS)
    histograms: dict[ColumnName, Grid] = Field(default_factory=dict, max_length=MAX_NUMERIC_COLUMNS)
    bounds: dict[ColumnName, BoundPair] = Field(default_factory=dict, max_length=MAX_NUMERIC_COLUMNS)

    @classmethod
    def build(
        cls,
        columns: Sequence[str] | None = None,
        histograms: Mapping[str, HistogramSpec] | None = None,
        bounds: Mapping[str, Sequence[float]] | None = None,
    ) -> NumericRequest:
        """The request for ``columns``, ``histograms`` and ``bounds``, or a one-line ``UsageError``."""
        try:
            grids = {} if histograms is None else histograms
            return cls.model_validate({"columns": columns, "histograms": grids, "bounds": bounds or {}})
        except ValidationError as exc:
            raise UsageError(explain(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _both_keys_in_json(cls, data: Any, info: ValidationInfo) -> Any:
        if info.mode == "json" and isinstance(data, dict) and not {"columns", "histograms"} <= set(data):
            raise ValueError(_REQUEST_SHAPE)
        return data

    @field_validator("columns", mode="before")
    @classmethod
    def _list_of_names(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("bounds", mode="before")
    @classmethod
    def _lists_of_bounds(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        return value

    @field_validator("columns")
    @classmethod
    def _named_once(cls, columns: tuple[str, ...] | None) -> tuple[str, ...] | None:
        seen: set[str] = set()
        for name in columns or ():
            if name in seen:
                raise ValueError(f"--numeric: column {name!r} is named twice")
            seen.add(name)
        return columns

    @model_validator(mode="after")
    def _within_columns(self) -> NumericRequest:
        for name in self.histograms:
            if self.columns is not None and name not in self.columns:
                raise ValueError(
                    f"--histogram names column {name!r}, which is not among the --numeric columns "
                    f"({', '.join(self.columns)})"
                )
        for name, (lower, upper) in self.bounds.items():
            if self.columns is not None and name not in self.columns:
                raise ValueError(f"bounds given for {name!r}, which is not among the --numeric columns")
            if lower >= upper:
                raise ValueError(f"bounds of {name!r}: lower {lower:g} must be below upper {upper:g}")
        return self

    @model_serializer(mode="wrap")
    def _bounds_only_when_declared(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        doc: dict[str, Any] = handler(self)
        if not self.bounds:  # absent, not empty: the request of a query without bounds reads as it always did
            doc.pop("bounds", None)
        return doc

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
        return cls.build(columns, grids, bounds)

    def to_json(self) -> dict[str, Any]:
        """The request as a JSON document (the ``CohortTask.numeric`` of a task)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, doc: object) -> NumericRequest:
        """The request a JSON document describes; ``UsageError`` for anything else."""
        try:
            text = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError):
            raise UsageError(_REQUEST_SHAPE) from None
        return cls._from_text(text)

    def to_options(self) -> dict[str, str]:
        """How the hub store keeps a query's request: ``{"numeric": "<canonical JSON of the request>"}``."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return {OPTION_KEY: text}

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> NumericRequest | None:
        """The request kept in a query's ``options``, ``None`` if it asked for no numeric statistics.

        Anything malformed raises ``UsageError``.
        """
        if OPTION_KEY not in options:
            return None
        text = options[OPTION_KEY]
        if not isinstance(text, str):
            raise UsageError(f"task option {OPTION_KEY!r} must be a JSON string")
        return cls._from_text(text)

    @classmethod
    def _from_text(cls, text: str) -> NumericRequest:
        try:  # the standard parser first: NaN and Infinity are not JSON
            json.loads(text, parse_constant=_not_json)
        except (ValueError, RecursionError):
            raise UsageError(f"task option {OPTION_KEY!r} is not valid JSON") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise UsageError(explain(exc, document=True)) from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


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
        spec = HistogramSpec.build(lower, upper, bins)
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
