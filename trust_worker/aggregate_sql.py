"""The one SQL statement that turns a validated cohort into aggregates, inside PostgreSQL.

Cohort rows never reach Python: the researcher's (re-emitted) query becomes a CTE and a single round trip
returns the distinct-person count, the row count, per-column null/non-null counts and the sex and age
distributions of the distinct persons, as JSON. Worker memory therefore stays flat whatever the cohort size.

The unit of disclosure control is the distinct ``person_id``; sex and age are looked up in ``omop.person``
for those persons, so a query that outputs many rows per person cannot inflate any cell.
"""

from __future__ import annotations

from collections.abc import Sequence

from trust_worker.concepts import FEMALE, MALE


def quote_ident(name: str) -> str:
    """PostgreSQL identifier quoting; names come from the validated AST, quoting makes any name inert."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Age today, from birth_datetime when present, else from year/month/day of birth (mid-year when the month
# is missing, first of the month when the day is missing). Unknown when no year, or a birth in the future.
_AGE_YEARS = """
CASE
  WHEN pe.birth_datetime IS NOT NULL THEN date_part('year', age(current_date, pe.birth_datetime::date))
  WHEN pe.year_of_birth BETWEEN 1 AND 9999 THEN date_part('year', age(current_date,
       make_date(pe.year_of_birth,
                 CASE WHEN pe.month_of_birth BETWEEN 1 AND 12 THEN pe.month_of_birth ELSE 7 END,
                 CASE WHEN pe.month_of_birth BETWEEN 1 AND 12 AND pe.day_of_birth BETWEEN 1 AND 28
                      THEN pe.day_of_birth ELSE 1 END)))
END"""


# PostgreSQL functions take at most 100 arguments: build the per-column object in chunks and concatenate.
_COLUMNS_PER_CHUNK = 40


def _column_counts(output_columns: Sequence[str]) -> str:
    """The per-column object, as an expression over ``cohort`` rows (aggregated in the same scan)."""
    if not output_columns:
        return "'{}'::jsonb"
    chunks = []
    for start in range(0, len(output_columns), _COLUMNS_PER_CHUNK):
        pairs = ", ".join(
            f"{quote_literal(col)}, jsonb_build_array(count({quote_ident(col)}), "
            f"count(*) - count({quote_ident(col)}))"
            for col in output_columns[start : start + _COLUMNS_PER_CHUNK]
        )
        chunks.append(f"jsonb_build_object({pairs})")
    return " || ".join(chunks)


def _capped_row_stats(output_columns: Sequence[str], cap: int) -> str:
    """Row and per-column non-null counts with each person's contribution capped at ``cap`` rows.

    What differential privacy needs: one person's records can then move each count by at most ``cap``.
    Rows without a ``person_id`` belong to nobody whose contribution could be bounded, so they are left
    out. The pairs keep the exact shape (``[non_null, null]``); ``null`` is the capped rows minus the capped
    non-null rows, never negative because ``count(col) <= count(*)`` for every person.
    """
    per_person = ", ".join(
        [f"least(count(*), {cap}) AS r"]
        + [f"least(count({quote_ident(col)}), {cap}) AS n{i}" for i, col in enumerate(output_columns)]
    )
    if output_columns:
        chunks = []
        for start in range(0, len(output_columns), _COLUMNS_PER_CHUNK):
            pairs = ", ".join(
                f"{quote_literal(col)}, jsonb_build_array(coalesce(sum(n{i}), 0), coalesce(sum(r - n{i}), 0))"
                for i, col in enumerate(output_columns)
                if start <= i < start + _COLUMNS_PER_CHUNK
            )
            chunks.append(f"jsonb_build_object({pairs})")
        columns = " || ".join(chunks)
    else:
        columns = "'{}'::jsonb"
    return (
        f"SELECT coalesce(sum(r), 0)::bigint AS row_count, {columns} AS columns FROM ("
        f"SELECT {per_person} FROM cohort WHERE cohort.person_id IS NOT NULL GROUP BY cohort.person_id) pp"
    )


def cohort_statistics_sql(
    cohort_sql: str, output_columns: Sequence[str], max_rows_per_person: int | None = None
) -> str:
    """Wrap ``cohort_sql`` (already validated and re-emitted) in the aggregation statement.

    ``max_rows_per_person`` (dp mode) caps each person's rows in the row and column counts
    (:func:`_capped_row_stats`); without it they are the plain counts of the cohort's rows.

    The statement returns one row: person_count, row_count, columns (JSON object column → [non_null, null]),
    sex (JSON label → persons) and age (JSON band → persons).

    Shaped for speed on millions of rows (measured with EXPLAIN ANALYZE, see BENCHMARKS.md): the cohort is
    scanned once for the row and column counts and once for its distinct persons; each person gets a
    small integer sex code and decade, grouped in one pass; text labels are attached to the (at most 33)
    groups afterwards, not to every person.
    """
    if max_rows_per_person is None:
        row_stats = f"SELECT count(*) AS row_count, {_column_counts(output_columns)} AS columns FROM cohort"
    else:
        row_stats = _capped_row_stats(output_columns, max_rows_per_person)
    return f"""WITH cohort AS MATERIALIZED (
{cohort_sql}
),
row_stats AS (
  {row_stats}
),
groups AS (
  SELECT
    CASE pe.gender_concept_id WHEN {MALE} THEN 1 WHEN {FEMALE} THEN 2 ELSE 0 END AS sex_code,
    -- one reference to the age: the planner inlines the LATERAL expression wherever it is used
    coalesce(greatest(least(floor(a.years / 10), 9), -1)::int, -1) AS decade,
    count(*) AS n
  FROM (SELECT DISTINCT cohort.person_id FROM cohort WHERE cohort.person_id IS NOT NULL) persons
  LEFT JOIN omop.person pe ON pe.person_id = persons.person_id
  CROSS JOIN LATERAL (SELECT {_AGE_YEARS.strip()} AS years) a
  GROUP BY 1, 2
)
SELECT
  (SELECT coalesce(sum(n), 0)::bigint FROM groups) AS person_count,
  (SELECT row_count FROM row_stats) AS row_count,
  (SELECT columns FROM row_stats) AS columns,
  (SELECT coalesce(json_object_agg(label, n), '{{}}'::json) FROM (
     SELECT CASE sex_code WHEN 1 THEN 'Male' WHEN 2 THEN 'Female' ELSE 'Unknown' END AS label, sum(n) AS n
     FROM groups GROUP BY 1) s) AS sex,
  (SELECT coalesce(json_object_agg(label, n), '{{}}'::json) FROM (
     SELECT CASE WHEN decade < 0 THEN 'Unknown' WHEN decade = 9 THEN '90+'
                 ELSE (decade * 10) || '-' || (decade * 10 + 9) END AS label, sum(n) AS n
     FROM groups GROUP BY 1) g) AS age"""
