"""The one SQL statement that turns a validated cohort into aggregates, inside PostgreSQL.

Cohort rows never reach Python: the researcher's (re-emitted) query becomes a CTE and a single round trip
returns the distinct-person count, the row count, per-column null/non-null counts and the sex and age
distributions of the distinct persons, as JSON. Worker memory therefore stays flat whatever the cohort size.

The unit of disclosure control is the distinct ``person_id``; sex and age are looked up in ``omop.person``
for those persons, so a query that outputs many rows per person cannot inflate any cell.
"""

from __future__ import annotations

from collections.abc import Sequence

from omop.concepts import FEMALE, MALE


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


def _columns_expr(output_columns: Sequence[str]) -> str:
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
    return "(SELECT " + " || ".join(chunks) + " FROM cohort)"


def cohort_statistics_sql(cohort_sql: str, output_columns: Sequence[str]) -> str:
    """Wrap ``cohort_sql`` (already validated and re-emitted) in the aggregation statement.

    The statement returns one row: person_count, row_count, columns (JSON object column → [non_null, null]),
    sex (JSON label → persons) and age (JSON band → persons).
    """
    columns_expr = _columns_expr(output_columns)
    return f"""WITH cohort AS MATERIALIZED (
{cohort_sql}
),
persons AS MATERIALIZED (
  SELECT DISTINCT cohort.person_id FROM cohort WHERE cohort.person_id IS NOT NULL
),
demographics AS (
  SELECT
    CASE pe.gender_concept_id WHEN {MALE} THEN 'Male' WHEN {FEMALE} THEN 'Female' ELSE 'Unknown' END AS sex,
    CASE
      WHEN a.years IS NULL OR a.years < 0 THEN 'Unknown'
      WHEN a.years >= 90 THEN '90+'
      ELSE (floor(a.years / 10) * 10)::int || '-' || (floor(a.years / 10) * 10 + 9)::int
    END AS age_band
  FROM persons
  LEFT JOIN omop.person pe ON pe.person_id = persons.person_id
  CROSS JOIN LATERAL (SELECT {_AGE_YEARS.strip()} AS years) a
)
SELECT
  (SELECT count(*) FROM persons) AS person_count,
  (SELECT count(*) FROM cohort) AS row_count,
  {columns_expr} AS columns,
  (SELECT coalesce(json_object_agg(sex, n), '{{}}'::json)
     FROM (SELECT sex, count(*) AS n FROM demographics GROUP BY sex) s) AS sex,
  (SELECT coalesce(json_object_agg(age_band, n), '{{}}'::json)
     FROM (SELECT age_band, count(*) AS n FROM demographics GROUP BY age_band) g) AS age"""
