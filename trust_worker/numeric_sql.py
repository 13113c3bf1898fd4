"""Numeric statistics of a validated cohort, computed inside PostgreSQL in one statement per step.

Two statements, both wrapping the (validated, re-emitted) cohort SQL as ``WITH cohort AS MATERIALIZED``:

1. :func:`column_types_sql` asks PostgreSQL for the type of every output column. It joins the cohort with
   ``ON false``, so the planner never runs the cohort at all (the CTE scan is "never executed") and the
   answer is one row whatever the cohort size. :func:`resolve_columns` then decides which columns to
   summarise, or rejects the request (unknown column, non-numeric column, person_id) with a reason code.
2. :func:`numeric_statistics_sql` computes, per column, in one round trip returning JSON:
   ``persons`` (distinct persons with a value), ``mean``, ``m2`` (the centred sum of squares) and, when
   asked, the count of persons per bin of the hub's grid; plus ``cohort_persons``.

Definitions (see ``docs/numeric-statistics.md``):

* The unit is the person, and each person's value is decided **per person**: a person whose rows hold
  one distinct value for the column has that value (however many rows repeat it); a person whose rows
  hold several distinct values, or none, is *missing* for that column. So a column's figures, and its
  status, never depend on whether one particular person has a second value: that person simply counts
  among the missing, which the ordinary pair rule already covers.
* Only rows with a non-null ``person_id`` count: a value that belongs to no person cannot be protected by a
  person threshold.
* Values are cast to ``double precision``; NaN, +/-Infinity and values beyond +/-1e100 count as missing
  (they have no place in a mean, and a single extreme value must not overflow the sums of squares, which
  would turn the whole answer into an error because of one person).
* The mean and M2 use the *corrected two-pass* algorithm: a first pass takes the mean ``a``, the second
  sums ``d = x - a`` and ``d*d``; then ``mean = a + sum(d)/n`` and ``M2 = sum(d*d) - sum(d)^2/n``. The
  correction term cancels the rounding error of the first pass, so the results are accurate to a few
  ulps, far inside the 1e-9 the pooled figures are tested to.
* Minimum and maximum are never computed. Bins come from the hub's grid with ``width_bucket``; values
  below the grid fall into bin 0 and values at or above its upper bound into the last bin
  (``omop.numeric_spec``).

Cohort rows never reach Python: only the aggregates come back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omop.errors import NumericRejected as NumericRejected
from omop.numeric_spec import PERSON_ID, HistogramSpec, NumericRequest, is_id_column
from omop.states import ReasonCode
from trust_worker.aggregate_sql import quote_ident, quote_literal

#: ``pg_typeof(...)::text`` of the types a numeric summary accepts. Everything else (dates, text, boolean,
#: money, oid, intervals) must be converted in the cohort SQL if the researcher wants it summarised.
NUMERIC_TYPES: frozenset[str] = frozenset(
    {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
)

# PostgreSQL functions take at most 100 arguments: objects are built in chunks and concatenated.
_PAIRS_PER_CHUNK = 40

#: Values at or beyond this magnitude count as missing: the squares of differences of values within the
#: bound, summed over any realistic cohort, stay far inside double precision (no overflow error).
VALUE_BOUND = 1e100


def _object(pairs: Sequence[tuple[str, str]]) -> str:
    """A jsonb object from (key literal SQL, value SQL) pairs, chunked under the argument limit."""
    if not pairs:
        return "'{}'::jsonb"
    chunks = []
    for start in range(0, len(pairs), _PAIRS_PER_CHUNK):
        args = ", ".join(f"{k}, {v}" for k, v in pairs[start : start + _PAIRS_PER_CHUNK])
        chunks.append(f"jsonb_build_object({args})")
    return " || ".join(chunks)


def column_types_sql(cohort_sql: str, output_columns: Sequence[str]) -> str:
    """One row, one jsonb object: output column → its type as ``pg_typeof`` names it.

    The cohort is joined ``ON false``, so PostgreSQL plans it (types are known) but never executes it.
    """
    pairs = [(quote_literal(col), f"pg_typeof(c.{quote_ident(col)})::text") for col in output_columns]
    return f"""WITH cohort AS MATERIALIZED (
{cohort_sql}
)
SELECT {_object(pairs)} AS column_types
FROM (SELECT 1) AS one LEFT JOIN cohort AS c ON false"""


def resolve_columns(
    request: NumericRequest, output_columns: Sequence[str], column_types: Mapping[str, str]
) -> list[str]:
    """The columns to summarise, in output order, or ``NumericRejected`` saying why not.

    Without an explicit list: every numeric output column that is not an id (``person_id``, ``*_id``),
    plus any column a histogram was asked for. An explicitly named (or histogram) column must be an output
    column of a numeric type and not ``person_id``.
    """
    named = list(request.columns or ())
    named += [name for name in request.histograms if name not in named]
    for name in named:
        if name not in output_columns:
            raise NumericRejected(
                ReasonCode.UNKNOWN_COLUMN,
                f"the cohort has no output column {name!r} (its columns: {', '.join(output_columns)})",
            )
        if name == PERSON_ID:
            raise NumericRejected(
                ReasonCode.PERSON_ID_COLUMN,
                "person_id identifies persons; it cannot be summarised as a number",
            )
        kind = column_types.get(name, "unknown")
        if kind not in NUMERIC_TYPES:
            raise NumericRejected(
                ReasonCode.NOT_NUMERIC,
                f"column {name!r} is of type {kind}, not numeric: convert it in the cohort query "
                "(for example with a CAST to numeric) or leave it out",
            )
    if request.columns is not None:
        chosen = set(named)
    else:
        chosen = set(named) | {
            col for col in output_columns if column_types.get(col) in NUMERIC_TYPES and not is_id_column(col)
        }
    columns = [col for col in output_columns if col in chosen]
    if not columns:
        raise NumericRejected(
            ReasonCode.NO_NUMERIC_COLUMNS,
            "the cohort has no numeric output column besides ids; name the columns to summarise",
        )
    return columns


def _float_literal(value: float) -> str:
    """An exact double precision literal (Python's repr round-trips)."""
    return f"{quote_literal(repr(float(value)))}::double precision"


def _finite_value(column: str) -> str:
    """The column as double precision, NULL when NaN, infinite or beyond ``VALUE_BOUND``.

    PostgreSQL sorts NaN above every number, so one range test drops NaN and both infinities too. The
    test runs on ``numeric`` (every numeric type converts to it without error, infinities and NaN
    included), so values far beyond double precision never reach the cast.
    """
    # compared as numeric first: a numeric beyond double precision's range would make the cast itself
    # fail, and an error caused by one person's value must never replace the answer
    exact = f"cohort.{quote_ident(column)}::numeric"
    bound = f"{VALUE_BOUND:.0e}::numeric"
    return (
        f"CASE WHEN {exact} > -{bound} AND {exact} < {bound} "
        f"THEN cohort.{quote_ident(column)}::double precision END"
    )


def _histogram_expr(var: str, spec: HistogramSpec) -> str:
    """Dense list of counts per bin 0..bins-1; out-of-range values go to the (open-ended) edge bins."""
    b = spec.bins
    bucket = (
        f"least(greatest(width_bucket(vals.{var}, {_float_literal(spec.lower)}, "
        f"{_float_literal(spec.upper)}, {b}), 1), {b}) - 1"
    )
    return (
        f"(SELECT jsonb_agg(coalesce(h.k, 0) ORDER BY g.i) FROM generate_series(0, {b - 1}) AS g(i) "
        f"LEFT JOIN (SELECT {bucket} AS b, count(*) AS k FROM per_person AS vals "
        f"WHERE vals.{var} IS NOT NULL GROUP BY 1) "
        f"AS h ON h.b = g.i)"
    )


def numeric_statistics_sql(
    cohort_sql: str, columns: Sequence[str], histograms: Mapping[str, HistogramSpec]
) -> str:
    """The statement computing the raw numeric statistics of ``columns`` (see the module docstring).

    It returns one row with one jsonb value::

        {"cohort_persons": 1200,
         "columns": {"bmi": {"persons": 700, "mean": 27.1, "m2": 17412.9,
                             "histogram": [3, 41, ...]},          # only for columns in ``histograms``
                     ...}}

    ``mean`` and ``m2`` are null when no person has a value. ``columns`` must be output columns of the
    cohort with numeric types (:func:`resolve_columns`); ``histograms`` may only name such columns.

    ``per_person`` reduces the cohort to one row per person first: a column's value is the person's one
    distinct value (``min = max``), or NULL when the person has none or several. Every later step counts
    persons, never rows.
    """
    if not columns:
        raise ValueError("numeric_statistics_sql needs at least one column")
    unknown = [name for name in histograms if name not in columns]
    if unknown:
        raise ValueError(f"histograms for columns not summarised: {unknown}")
    values = ",\n    ".join(f"{_finite_value(col)} AS v{i}" for i, col in enumerate(columns))
    single = ",\n    ".join(
        f"CASE WHEN min(obs.v{i}) = max(obs.v{i}) THEN min(obs.v{i}) END AS v{i}" for i in range(len(columns))
    )
    means = ", ".join(f"avg(vals.v{i}) AS a{i}" for i in range(len(columns)))
    sums = ",\n    ".join(
        f"count(vals.v{i}) AS p{i}, "
        f"sum(vals.v{i} - fp.a{i}) AS d{i}, sum((vals.v{i} - fp.a{i}) * (vals.v{i} - fp.a{i})) AS s{i}"
        for i in range(len(columns))
    )
    entries = []
    for i, col in enumerate(columns):
        fields = [
            ("'persons'", f"sp.p{i}"),
            ("'mean'", f"fp.a{i} + sp.d{i} / nullif(sp.p{i}, 0)"),
            ("'m2'", f"sp.s{i} - sp.d{i} * sp.d{i} / nullif(sp.p{i}, 0)"),
        ]
        if col in histograms:
            fields.append(("'histogram'", _histogram_expr(f"v{i}", histograms[col])))
        entries.append((quote_literal(col), _object(fields)))
    return f"""WITH cohort AS MATERIALIZED (
{cohort_sql}
),
per_person AS MATERIALIZED (
  SELECT obs.pid,
    {single}
  FROM (
    SELECT cohort.person_id AS pid,
      {values}
    FROM cohort WHERE cohort.person_id IS NOT NULL
  ) AS obs
  GROUP BY obs.pid
),
first_pass AS MATERIALIZED (
  SELECT {means} FROM per_person AS vals
),
second_pass AS MATERIALIZED (
  SELECT
    {sums}
  FROM per_person AS vals CROSS JOIN first_pass AS fp
)
SELECT jsonb_build_object(
  'cohort_persons', (SELECT count(*) FROM per_person),
  'columns', (SELECT {_object(entries)} FROM first_pass AS fp CROSS JOIN second_pass AS sp)
) AS numeric"""


def clamped_statistics_sql(
    cohort_sql: str,
    columns: Sequence[str],
    bounds: Mapping[str, tuple[float, float]],
    histograms: Mapping[str, HistogramSpec],
) -> str:
    """The raw figures dp mode noises: per column, persons with a value and centred clamped sums.

    Each person's one value (decided as in :func:`numeric_statistics_sql`) is clamped to the column's
    ``[lower, upper]`` and centred on the midpoint ``c``; the statement returns, per column, ``persons``,
    ``sum`` of ``x - c`` and ``sumsq`` of ``(x - c)^2`` (one person moves them by at most half the width,
    and its square), and the persons per bin of a requested grid::

        {"cohort_persons": 1200,
         "columns": {"bmi": {"persons": 700, "sum": -312.5, "sumsq": 41020.2, "histogram": [3, 41, ...]}}}
    """
    if not columns:
        raise ValueError("clamped_statistics_sql needs at least one column")
    missing = [name for name in columns if name not in bounds]
    if missing:
        raise ValueError(f"no bounds for {missing}")
    values = ",\n    ".join(f"{_finite_value(col)} AS v{i}" for i, col in enumerate(columns))
    single = ",\n    ".join(
        f"CASE WHEN min(obs.v{i}) = max(obs.v{i}) THEN min(obs.v{i}) END AS v{i}" for i in range(len(columns))
    )
    centred = []
    for i, col in enumerate(columns):
        lower, upper = bounds[col]
        mid = (lower + upper) / 2
        centred.append(
            f"least(greatest(vals.v{i}, {_float_literal(lower)}), {_float_literal(upper)}) "
            f"- {_float_literal(mid)}"
        )
    # GREATEST and LEAST ignore NULLs in PostgreSQL (greatest(NULL, 10) is 10), so a person without a value
    # must be filtered out explicitly, or they would count as the lower bound
    sums = ",\n    ".join(
        f"count(vals.v{i}) AS p{i}, "
        f"coalesce(sum({c}) FILTER (WHERE vals.v{i} IS NOT NULL), 0) AS s{i}, "
        f"coalesce(sum(({c}) * ({c})) FILTER (WHERE vals.v{i} IS NOT NULL), 0) AS q{i}"
        for i, c in enumerate(centred)
    )
    entries = []
    for i, col in enumerate(columns):
        fields = [("'persons'", f"sp.p{i}"), ("'sum'", f"sp.s{i}"), ("'sumsq'", f"sp.q{i}")]
        if col in histograms:
            fields.append(("'histogram'", _histogram_expr(f"v{i}", histograms[col])))
        entries.append((quote_literal(col), _object(fields)))
    return f"""WITH cohort AS MATERIALIZED (
{cohort_sql}
),
per_person AS MATERIALIZED (
  SELECT obs.pid,
    {single}
  FROM (
    SELECT cohort.person_id AS pid,
      {values}
    FROM cohort WHERE cohort.person_id IS NOT NULL
  ) AS obs
  GROUP BY obs.pid
),
sums AS MATERIALIZED (
  SELECT
    {sums}
  FROM per_person AS vals
)
SELECT jsonb_build_object(
  'cohort_persons', (SELECT count(*) FROM per_person),
  'columns', (SELECT {_object(entries)} FROM sums AS sp)
) AS numeric"""
