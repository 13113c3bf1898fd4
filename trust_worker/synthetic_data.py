"""Synthetic OMOP data: a FLIP-like fixture, and bulk populations of any size for demos and load tests.

Two modes, both deterministic for a given seed (each trust gets a different seed):

* **fixture** reproduces the facts of FLIP's integration fixture: 16 persons, 12 of them imaged (6 male,
  6 female), 24 image_occurrence rows (12 CT, 8 MR, 4 XR), a "CT Spleen" procedure (4002001) with its CT
  study for persons 1-6 only, unique accession ids, and the image_feature -> measurement chain carrying
  Slice Thickness (value_as_number) and Manufacturer (value_source_value). Built in Python, a few rows.
* **bulk** generates N persons inside PostgreSQL with set-based ``INSERT ... SELECT FROM generate_series``;
  rows never travel through Python, which is what makes a million persons fit in a couple of minutes.
  Every random draw comes from PostgreSQL's ``random()`` after ``setseed()`` with a value derived from the
  seed and the table, on a plan that is forced to be serial so the order of draws is fixed.

Ids are derived from the person id (``person_id * 8 + k``) rather than counters, so child tables can point
at parent rows without a join and the id layout is the same for every seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from omop import schema
from omop.errors import OmopFedError, UsageError, first_line
from trust_worker import concepts as c
from trust_worker.data_loading import (
    analyze,
    copy_rows,
    create_secondary_indexes,
    drop_secondary_indexes,
    prepare_for_load,
    tune_session_for_bulk,
    write_catalogue,
)
from trust_worker.db import connect

MAX_PERSONS = 10_000_000
DEFAULT_PERSONS = 5_000
FIXTURE_PERSONS = 16


@dataclass
class SeedReport:
    """What a seed run wrote: rows per table and the wall-clock time it took."""

    mode: str
    persons: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def check_persons(persons: int) -> int:
    """``persons`` if it is a sensible population size, else a ``UsageError``."""
    if persons < 1:
        raise UsageError(f"--persons must be at least 1 (got {persons})")
    if persons > MAX_PERSONS:
        raise UsageError(f"--persons must be at most {MAX_PERSONS:,} (got {persons:,})")
    return persons


def seed(
    db_url: str,
    *,
    persons: int = DEFAULT_PERSONS,
    seed: int = 1,
    fixture: bool = False,
    replace: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> SeedReport:
    """Load synthetic data into the (empty, or ``replace``-d) omop schema at ``db_url`` in one transaction.

    ``db_url`` must be the owner/superuser URL; the schema must have been created by ``init-db``.
    """
    if not fixture:
        check_persons(persons)
    started = time.perf_counter()
    with connect(db_url) as conn:
        try:
            with conn.transaction():
                tune_session_for_bulk(conn)
                prepare_for_load(conn, replace=replace)
                if fixture:
                    report = SeedReport("fixture", FIXTURE_PERSONS, seed)
                    write_fixture(conn, report)
                else:
                    report = SeedReport("bulk", persons, seed)
                    write_bulk(conn, persons, seed, report, progress)
        except psycopg.Error as exc:
            raise OmopFedError(f"seeding failed, nothing was written: {first_line(exc)}") from exc
    report.seconds = time.perf_counter() - started
    return report


def _cdm_source(conn: psycopg.Connection[Any], name: str, abbreviation: str, description: str) -> None:
    today = dt.date(2024, 1, 1)  # fixed, so the same seed gives byte-identical tables
    copy_rows(
        conn,
        "cdm_source",
        (
            "cdm_source_name",
            "cdm_source_abbreviation",
            "cdm_holder",
            "source_description",
            "source_release_date",
            "cdm_release_date",
            "cdm_version",
            "cdm_version_concept_id",
            "vocabulary_version",
        ),
        [(name, abbreviation, "omop-federation", description, today, today, "5.4", c.CDM_V54, "synthetic")],
    )


# --------------------------------------------------------------------------------------------------------
# Fixture mode
# --------------------------------------------------------------------------------------------------------

_MANUFACTURERS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips", "TOSHIBA")
_SLICE_MM = {c.CT: (1.25, 2.5, 5.0), c.MR: (3.0, 4.0, 5.0), c.XR: (1.0,)}


def fixture_plan() -> list[dict[str, Any]]:
    """The fixture's imaging studies, one dict per image_occurrence row (pure: no database needed).

    Persons 1-12 have two studies each: first a CT (for persons 1-6 the CT Spleen study, linked to their
    CT Spleen procedure), then an MR (persons 1-8) or an XR (persons 9-12): 12 CT, 8 MR, 4 XR.
    """
    images: list[dict[str, Any]] = []
    for person in range(1, 13):
        second = c.MR if person <= 8 else c.XR
        for k, modality in enumerate((c.CT, second)):
            image_id = 2 * person - 1 + k
            spleen = modality == c.CT and person <= 6
            site = c.SITE_SPLEEN if spleen else (c.SITE_ABDOMEN if modality == c.CT else c.SITE_CHEST)
            slices = _SLICE_MM[modality]
            images.append(
                {
                    "image_occurrence_id": image_id,
                    "person_id": person,
                    "procedure_occurrence_id": person if spleen else None,
                    "visit_occurrence_id": person,
                    "modality_concept_id": modality,
                    "anatomic_site_concept_id": site,
                    "accession_id": f"ACC{image_id:06d}",
                    "image_occurrence_date": dt.date(2023, 1, 1) + dt.timedelta(days=7 * person + k),
                    "image_study_uid": f"2.25.{100000 + image_id}",
                    "image_series_uid": f"2.25.{100000 + image_id}.1",
                    "wadors_uri": None,
                    "local_path": None,
                    "slice_thickness": slices[image_id % len(slices)],
                    "manufacturer": _MANUFACTURERS[image_id % len(_MANUFACTURERS)],
                }
            )
    return images


def write_fixture(conn: psycopg.Connection[Any], report: SeedReport) -> None:
    """The FLIP-like fixture (see module docstring); the seed does not change it."""
    write_catalogue(conn)
    _cdm_source(conn, "omop-federation fixture", "FIXTURE", "FLIP-like integration fixture (16 persons)")
    genders = [c.MALE if (p % 2 == 1) else c.FEMALE for p in range(1, FIXTURE_PERSONS + 1)]
    report.rows["person"] = copy_rows(
        conn,
        "person",
        (
            "person_id",
            "gender_concept_id",
            "year_of_birth",
            "month_of_birth",
            "day_of_birth",
            "birth_datetime",
            "race_concept_id",
            "ethnicity_concept_id",
            "person_source_value",
            "gender_source_value",
        ),
        [
            (
                p,
                g,
                1950 + 3 * p,
                1 + p % 12,
                1 + p % 28,
                dt.datetime(1950 + 3 * p, 1 + p % 12, 1 + p % 28),
                0,
                0,
                f"FLIP-P{p:03d}",
                "M" if g == c.MALE else "F",
            )
            for p, g in enumerate(genders, start=1)
        ],
    )
    persons = range(1, FIXTURE_PERSONS + 1)
    report.rows["observation_period"] = copy_rows(
        conn,
        "observation_period",
        (
            "observation_period_id",
            "person_id",
            "observation_period_start_date",
            "observation_period_end_date",
            "period_type_concept_id",
        ),
        [(p, p, dt.date(2020, 1, 1), dt.date(2024, 12, 31), c.EHR_TYPE) for p in persons],
    )
    visit_date = {p: dt.date(2023, 1, 1) + dt.timedelta(days=7 * p) for p in persons}
    report.rows["visit_occurrence"] = copy_rows(
        conn,
        "visit_occurrence",
        (
            "visit_occurrence_id",
            "person_id",
            "visit_concept_id",
            "visit_start_date",
            "visit_end_date",
            "visit_type_concept_id",
        ),
        [(p, p, c.OUTPATIENT_VISIT, visit_date[p], visit_date[p], c.EHR_TYPE) for p in persons],
    )
    report.rows["procedure_occurrence"] = copy_rows(
        conn,
        "procedure_occurrence",
        (
            "procedure_occurrence_id",
            "person_id",
            "procedure_concept_id",
            "procedure_date",
            "procedure_type_concept_id",
            "visit_occurrence_id",
            "procedure_source_value",
        ),
        [
            (
                p,
                p,
                c.CT_SPLEEN if p <= 6 else c.CONSULTATION,
                visit_date[p],
                c.EHR_TYPE,
                p,
                "CT SPLEEN" if p <= 6 else "CONSULT",
            )
            for p in persons
        ],
    )
    images = fixture_plan()
    image_columns = tuple(c.name for c in schema.table_columns()["image_occurrence"])
    report.rows["image_occurrence"] = copy_rows(
        conn, "image_occurrence", image_columns, [[img[col] for col in image_columns] for img in images]
    )
    features: list[tuple[Any, ...]] = []
    measurements: list[tuple[Any, ...]] = []
    for img in images:
        for k, (feature, number, text, unit) in enumerate(
            (
                (c.SLICE_THICKNESS, img["slice_thickness"], None, c.UNIT_MILLIMETER),
                (c.MANUFACTURER, None, img["manufacturer"], None),
            )
        ):
            feature_id = 2 * img["image_occurrence_id"] - 1 + k
            measurement_id = 1000 + feature_id
            features.append(
                (
                    feature_id,
                    img["person_id"],
                    img["image_occurrence_id"],
                    feature,
                    c.EHR_TYPE,
                    img["anatomic_site_concept_id"],
                    c.MEASUREMENT_EVENT_FIELD,
                    measurement_id,
                )
            )
            measurements.append(
                (
                    measurement_id,
                    img["person_id"],
                    feature,
                    img["image_occurrence_date"],
                    c.EHR_TYPE,
                    number,
                    unit,
                    img["visit_occurrence_id"],
                    text,
                )
            )
    report.rows["image_feature"] = copy_rows(
        conn,
        "image_feature",
        (
            "image_feature_id",
            "person_id",
            "image_occurrence_id",
            "image_feature_concept_id",
            "image_feature_type_concept_id",
            "anatomic_site_concept_id",
            "image_feature_event_field_concept_id",
            "image_feature_event_id",
        ),
        features,
    )
    report.rows["measurement"] = copy_rows(
        conn,
        "measurement",
        (
            "measurement_id",
            "person_id",
            "measurement_concept_id",
            "measurement_date",
            "measurement_type_concept_id",
            "value_as_number",
            "unit_concept_id",
            "visit_occurrence_id",
            "value_source_value",
        ),
        measurements,
    )
    analyze(conn)


# --------------------------------------------------------------------------------------------------------
# Bulk mode
# --------------------------------------------------------------------------------------------------------


def seed_fraction(seed: int, salt: str) -> float:
    """A value in [-1, 1] for PostgreSQL's ``setseed``, derived from the seed and a per-table salt."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    n: int = struct.unpack(">Q", digest[:8])[0]
    return (n / 2**64) * 2.0 - 1.0


def _normal(mean: float, sd: float, low: float, high: float) -> str:
    """SQL for a normal draw (Box-Muller over two random() calls), clamped and rounded to 0.1."""
    z = "sqrt(-2.0 * ln(1.0 - random())) * cos(2.0 * pi() * random())"
    return f"round(least(greatest({mean} + {sd} * {z}, {low}), {high})::numeric, 1)"


# Each step: (table it fills, SQL). Steps run in order, each after setseed(seed_fraction(seed, table)).
# %(n)s is the number of persons. Ids: person p owns ids p*8+1 .. p*8+7 in each child table.
# Up to two records per visit (conditions, drugs): each visit row twice, each with its own draws.
_TWO_DRAWS_PER_VISIT = """
                SELECT v.*, k, random() AS keep, random() AS r
                FROM omop.visit_occurrence AS v CROSS JOIN generate_series(1, 2) AS k
            """


_BULK_STEPS: tuple[tuple[str, str], ...] = (
    (
        "person",
        f"""
        INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth,
            birth_datetime, race_concept_id, ethnicity_concept_id, person_source_value, gender_source_value)
        SELECT g, gender, yob, mob, dob,
               CASE WHEN has_dt < 0.6 THEN make_timestamp(yob, mob, dob, hh, mi, 0) END,
               0, 0, 'SYN' || g, CASE gender WHEN {c.MALE} THEN 'M' WHEN {c.FEMALE} THEN 'F' ELSE 'U' END
        FROM (
            SELECT g,
                   CASE WHEN r < 0.01 THEN 0 WHEN r < 0.495 THEN {c.MALE} ELSE {c.FEMALE} END AS gender,
                   1925 + floor(random() * 90)::int AS yob,
                   1 + floor(random() * 12)::int AS mob,
                   1 + floor(random() * 28)::int AS dob,
                   random() AS has_dt,
                   floor(random() * 24)::int AS hh,
                   floor(random() * 60)::int AS mi
            FROM (SELECT g, random() AS r FROM generate_series(1, %(n)s) AS g) AS draws
        ) AS p
        """,
    ),
    (
        "observation_period",
        f"""
        INSERT INTO omop.observation_period (observation_period_id, person_id, observation_period_start_date,
            observation_period_end_date, period_type_concept_id)
        SELECT person_id, person_id, s, least(s + 365 + floor(random() * 3000)::int, DATE '2024-12-31'),
               {c.EHR_TYPE}
        FROM (SELECT person_id, DATE '2012-01-01' + floor(random() * 3650)::int AS s FROM omop.person) AS o
        """,
    ),
    (
        "visit_occurrence",
        f"""
        INSERT INTO omop.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id, visit_start_date,
            visit_end_date, visit_type_concept_id, visit_source_value)
        SELECT person_id * 8 + k, person_id, concept, d,
               CASE WHEN concept = {c.INPATIENT_VISIT} THEN d + 1 + floor(random() * 10)::int ELSE d END,
               {c.EHR_TYPE},
               CASE concept WHEN {c.INPATIENT_VISIT} THEN 'IP' WHEN {c.EMERGENCY_ROOM_VISIT} THEN 'ER'
                            ELSE 'OP' END
        FROM (
            SELECT op.person_id, k,
                   observation_period_start_date
                     + floor(random() * (observation_period_end_date - observation_period_start_date
                                         + 1))::int AS d,
                   CASE WHEN random() < 0.7 THEN {c.OUTPATIENT_VISIT}
                        WHEN random() < 0.5 THEN {c.INPATIENT_VISIT} ELSE {c.EMERGENCY_ROOM_VISIT} END
                     AS concept
            FROM omop.observation_period AS op
            CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 3)::int + 0 * op.person_id) AS k
        ) AS v
        """,
    ),
    (
        "image_occurrence",
        f"""
        INSERT INTO omop.image_occurrence (image_occurrence_id, person_id, procedure_occurrence_id,
            visit_occurrence_id, modality_concept_id, anatomic_site_concept_id, accession_id,
            image_occurrence_date, image_study_uid, image_series_uid)
        SELECT person_id * 8 + 1, person_id,
               CASE WHEN modality = {c.CT} AND site = {c.SITE_SPLEEN} THEN person_id * 8 + 2 END,
               visit_occurrence_id, modality, site,
               'SYN' || lpad(to_hex(person_id), 8, '0'), visit_start_date,
               '2.25.' || (900000000000 + person_id), '2.25.' || (900000000000 + person_id) || '.1'
        FROM (
            SELECT person_id, visit_occurrence_id, visit_start_date, modality,
                   CASE WHEN modality = {c.CT} THEN
                          CASE WHEN r2 < 0.4 THEN {c.SITE_SPLEEN} WHEN r2 < 0.7 THEN {c.SITE_ABDOMEN}
                               ELSE {c.SITE_CHEST} END
                        WHEN modality = {c.MR} THEN
                          CASE WHEN r2 < 0.5 THEN {c.SITE_HEAD} ELSE {c.SITE_ABDOMEN} END
                        ELSE {c.SITE_CHEST} END AS site
            FROM (
                SELECT person_id, visit_occurrence_id, visit_start_date,
                       CASE WHEN r1 < 0.5 THEN {c.CT} WHEN r1 < 0.83 THEN {c.MR} ELSE {c.XR} END AS modality,
                       random() AS r2
                FROM (
                    SELECT person_id, visit_occurrence_id, visit_start_date, random() AS r0, random() AS r1
                    FROM omop.visit_occurrence WHERE visit_occurrence_id = person_id * 8 + 1
                ) AS x WHERE r0 < 0.2
            ) AS y
        ) AS z
        """,
    ),
    (
        "procedure_occurrence",
        f"""
        INSERT INTO omop.procedure_occurrence (procedure_occurrence_id, person_id, procedure_concept_id,
            procedure_date, procedure_type_concept_id, visit_occurrence_id, procedure_source_value)
        SELECT visit_occurrence_id, person_id, {c.CONSULTATION}, visit_start_date, {c.EHR_TYPE},
               visit_occurrence_id, 'CONSULT'
        FROM omop.visit_occurrence WHERE visit_occurrence_id = person_id * 8 + 1
        UNION ALL
        SELECT procedure_occurrence_id, person_id, {c.CT_SPLEEN}, image_occurrence_date, {c.EHR_TYPE},
               visit_occurrence_id, 'CT SPLEEN'
        FROM omop.image_occurrence WHERE procedure_occurrence_id IS NOT NULL
        """,
    ),
    (
        "image_feature",
        f"""
        INSERT INTO omop.image_feature (image_feature_id, person_id, image_occurrence_id,
            image_feature_concept_id, image_feature_type_concept_id, anatomic_site_concept_id,
            image_feature_event_field_concept_id, image_feature_event_id)
        SELECT image_occurrence_id - 1 + k, person_id, image_occurrence_id,
               CASE k WHEN 1 THEN {c.SLICE_THICKNESS} ELSE {c.MANUFACTURER} END,
               {c.EHR_TYPE}, anatomic_site_concept_id, {c.MEASUREMENT_EVENT_FIELD}, person_id * 8 + 5 + k
        FROM omop.image_occurrence CROSS JOIN generate_series(1, 2) AS k
        """,
    ),
    (
        "measurement",
        f"""
        INSERT INTO omop.measurement (measurement_id, person_id, measurement_concept_id, measurement_date,
            measurement_type_concept_id, value_as_number, unit_concept_id, visit_occurrence_id,
            measurement_source_value, unit_source_value, value_source_value)
        SELECT person_id * 8 + k, person_id, concept, d, {c.EHR_TYPE},
               CASE k WHEN 1 THEN {_normal(27, 5, 13, 70)}
                      WHEN 2 THEN {_normal(125, 15, 70, 240)}
                      WHEN 3 THEN {_normal(80, 10, 40, 140)}
                      WHEN 4 THEN {_normal(120, 35, 20, 400)}
                      ELSE {_normal(5.8, 0.9, 3.5, 16)} END,
               unit, visit_occurrence_id, source, unit_source, NULL
        FROM (
            SELECT v.person_id, v.visit_occurrence_id, v.visit_start_date AS d, m.k, m.concept, m.unit,
                   m.source, m.unit_source, random() AS r
            FROM omop.visit_occurrence AS v
            CROSS JOIN (VALUES (1, {c.BMI}, {c.UNIT_KG_PER_M2}, 'BMI', 'kg/m2'),
                               (2, {c.SYSTOLIC_BP}, {c.UNIT_MMHG}, 'SBP', 'mmHg'),
                               (3, {c.DIASTOLIC_BP}, {c.UNIT_MMHG}, 'DBP', 'mmHg'),
                               (4, {c.LDL_CHOLESTEROL}, {c.UNIT_MG_PER_DL}, 'LDL', 'mg/dL'),
                               (5, {c.HBA1C}, {c.UNIT_PERCENT}, 'HbA1c', '%%'))
                 AS m (k, concept, unit, source, unit_source)
            WHERE v.visit_occurrence_id = v.person_id * 8 + 1
        ) AS draws
        WHERE r < 0.6
        UNION ALL
        SELECT f.image_feature_event_id, f.person_id, f.image_feature_concept_id, i.image_occurrence_date,
               {c.EHR_TYPE},
               CASE WHEN f.image_feature_concept_id = {c.SLICE_THICKNESS} THEN
                    (CASE i.modality_concept_id
                       WHEN {c.CT} THEN (ARRAY[0.625, 1.25, 2.5, 5.0])[1 + (i.person_id %% 4)::int]
                       WHEN {c.MR} THEN (ARRAY[3.0, 4.0, 5.0])[1 + (i.person_id %% 3)::int]
                       ELSE 1.0 END) END,
               CASE WHEN f.image_feature_concept_id = {c.SLICE_THICKNESS} THEN {c.UNIT_MILLIMETER} END,
               i.visit_occurrence_id,
               CASE WHEN f.image_feature_concept_id = {c.SLICE_THICKNESS} THEN 'SliceThickness'
                    ELSE 'Manufacturer' END,
               CASE WHEN f.image_feature_concept_id = {c.SLICE_THICKNESS} THEN 'mm' END,
               CASE WHEN f.image_feature_concept_id = {c.MANUFACTURER} THEN
                    (ARRAY['SIEMENS', 'GE MEDICAL SYSTEMS', 'Philips', 'TOSHIBA'])
                      [1 + (i.person_id %% 4)::int] END
        FROM omop.image_feature AS f JOIN omop.image_occurrence AS i USING (image_occurrence_id)
        """,
    ),
    (
        "condition_occurrence",
        f"""
        INSERT INTO omop.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,
            condition_start_date, condition_end_date, condition_type_concept_id, visit_occurrence_id,
            condition_source_value)
        SELECT visit_occurrence_id * 2 + k - 1, person_id, concept, visit_start_date, visit_end_date,
               {c.EHR_TYPE}, visit_occurrence_id, concept::text
        FROM (
            SELECT v.visit_occurrence_id, v.person_id, v.visit_start_date, v.visit_end_date, k,
                   CASE WHEN r < 0.07 THEN {c.GI_BLEED} WHEN r < 0.35 THEN {c.TYPE_2_DIABETES}
                        WHEN r < 0.75 THEN {c.HYPERTENSION} ELSE {c.OSTEOARTHRITIS} END AS concept
            FROM ({_TWO_DRAWS_PER_VISIT}) AS v
            WHERE keep < 0.35
        ) AS x
        """,
    ),
    (
        "drug_exposure",
        f"""
        INSERT INTO omop.drug_exposure (drug_exposure_id, person_id, drug_concept_id,
            drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id, days_supply, quantity,
            visit_occurrence_id,
            drug_source_value)
        SELECT visit_occurrence_id * 2 + k - 1, person_id, concept, visit_start_date, visit_start_date + days,
               {c.EHR_TYPE}, days, days, visit_occurrence_id, concept::text
        FROM (
            SELECT v.visit_occurrence_id, v.person_id, v.visit_start_date, k,
                   CASE WHEN r < 0.25 THEN {c.CELECOXIB} WHEN r < 0.4 THEN {c.DICLOFENAC}
                        WHEN r < 0.7 THEN {c.IBUPROFEN} ELSE {c.ACETAMINOPHEN} END AS concept,
                   (ARRAY[7, 14, 30, 60, 90])[1 + floor(random() * 5)::int] AS days
            FROM ({_TWO_DRAWS_PER_VISIT}) AS v
            WHERE keep < 0.35
        ) AS x
        """,
    ),
    (
        "death",
        f"""
        INSERT INTO omop.death (person_id, death_date, death_type_concept_id, cause_concept_id)
        SELECT person_id, observation_period_end_date, {c.EHR_TYPE}, 0
        FROM (SELECT person_id, observation_period_end_date, random() AS r FROM omop.observation_period) AS o
        WHERE r < 0.01
        """,
    ),
    (
        "condition_era",
        """
        INSERT INTO omop.condition_era (condition_era_id, person_id, condition_concept_id,
            condition_era_start_date, condition_era_end_date, condition_occurrence_count)
        SELECT min(condition_occurrence_id), person_id, condition_concept_id, min(condition_start_date),
               max(coalesce(condition_end_date, condition_start_date)), count(*)
        FROM omop.condition_occurrence GROUP BY person_id, condition_concept_id
        """,
    ),
    (
        "drug_era",
        """
        INSERT INTO omop.drug_era (drug_era_id, person_id, drug_concept_id, drug_era_start_date,
            drug_era_end_date, drug_exposure_count, gap_days)
        SELECT min(drug_exposure_id), person_id, drug_concept_id, min(drug_exposure_start_date),
               max(drug_exposure_end_date), count(*), 0
        FROM omop.drug_exposure GROUP BY person_id, drug_concept_id
        """,
    ),
)


def write_bulk(
    conn: psycopg.Connection[Any],
    persons: int,
    seed: int,
    report: SeedReport,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    """Generate ``persons`` persons and their records inside PostgreSQL (see module docstring)."""
    check_persons(persons)
    # A fixed, serial order of random() draws: no parallel plans, no synchronized scans.
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    conn.execute("SET LOCAL synchronize_seqscans = off")
    drop_secondary_indexes(conn)
    write_catalogue(conn)
    _cdm_source(conn, f"omop-federation synthetic (seed {seed})", "SYNTHETIC", f"{persons} synthetic persons")
    for table, statement in _BULK_STEPS:
        conn.execute("SELECT setseed(%s)", (seed_fraction(seed, table),))
        cur = conn.execute(statement.encode(), {"n": persons})
        report.rows[table] = cur.rowcount
        if progress is not None:
            progress(table, cur.rowcount)
        if table in ("person", "observation_period", "visit_occurrence", "image_occurrence"):
            # later steps read these tables; fresh statistics keep their plans sensible
            analyze(conn, [table])
    create_secondary_indexes(conn)
    analyze(conn)
