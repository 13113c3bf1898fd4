"""Synthetic data: the FLIP fixture facts, and bulk mode's determinism and plausibility."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from omop import schema
from omop.errors import UsageError
from tests.conftest import OmopDb
from trust_worker import concepts as c
from trust_worker.data_loading import DataPresentError
from trust_worker.synthetic_data import MAX_PERSONS, check_persons, fixture_plan, seed, seed_fraction

# --- pure --------------------------------------------------------------------------------------------------


def test_fixture_plan_has_flip_modality_counts_and_unique_accessions() -> None:
    images = fixture_plan()
    assert len(images) == 24
    assert Counter(i["modality_concept_id"] for i in images) == {c.CT: 12, c.MR: 8, c.XR: 4}
    assert len({i["accession_id"] for i in images}) == 24
    assert {i["person_id"] for i in images} == set(range(1, 13))
    linked = [i for i in images if i["procedure_occurrence_id"] is not None]
    assert sorted(i["person_id"] for i in linked) == [1, 2, 3, 4, 5, 6]
    assert all(i["modality_concept_id"] == c.CT for i in linked)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["person", "measurement"]))
def test_seed_fraction_is_a_valid_setseed_argument(seed_value: int, table: str) -> None:
    value = seed_fraction(seed_value, table)
    assert -1.0 <= value <= 1.0
    assert value == seed_fraction(seed_value, table)


def test_seed_fraction_differs_between_seeds_and_tables() -> None:
    assert seed_fraction(1, "person") != seed_fraction(2, "person")
    assert seed_fraction(1, "person") != seed_fraction(1, "visit_occurrence")


@pytest.mark.parametrize("bad", [0, -1, -1000, MAX_PERSONS + 1])
def test_absurd_person_counts_are_usage_errors(bad: int) -> None:
    with pytest.raises(UsageError):
        check_persons(bad)


def test_sensible_person_counts_pass() -> None:
    assert check_persons(1) == 1
    assert check_persons(MAX_PERSONS) == MAX_PERSONS


# --- fixture mode ------------------------------------------------------------------------------------------


def _scalar(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


FLIP_WORKED_EXAMPLE = """
WITH gender_concept AS (
  SELECT concept_id, concept_name FROM omop.concept WHERE concept_name IN ('Male', 'Female')
), procedure_concept AS (
  SELECT concept_id, concept_name FROM omop.concept
  WHERE domain_id = 'Procedure' AND concept_class_id IN ('Procedure', 'Clinical Observation')
    AND standard_concept = 'S'
)
SELECT p.person_id, p.person_source_value AS "Patient ID", gender_concept.concept_name AS "Gender",
       io.accession_id, io.image_occurrence_date AS "Image date"
FROM omop.person p
LEFT JOIN omop.visit_occurrence v ON v.person_id = p.person_id
LEFT JOIN omop.procedure_occurrence pr ON pr.visit_occurrence_id = v.visit_occurrence_id
LEFT JOIN omop.image_occurrence io ON io.procedure_occurrence_id = pr.procedure_occurrence_id
LEFT JOIN gender_concept ON p.gender_concept_id = gender_concept.concept_id
LEFT JOIN procedure_concept ON pr.procedure_concept_id = procedure_concept.concept_id
WHERE procedure_concept.concept_name = 'CT Spleen'
"""

FEATURES = f"""
SELECT io.image_occurrence_id,
       MAX(CASE WHEN fc.concept_name = 'Slice Thickness' THEN m.value_as_number END) AS slice_thickness_mm,
       MAX(CASE WHEN fc.concept_name = 'Manufacturer' THEN m.value_source_value END) AS manufacturer
FROM omop.image_occurrence io
JOIN omop.image_feature f ON f.image_occurrence_id = io.image_occurrence_id
JOIN omop.concept fc ON fc.concept_id = f.image_feature_concept_id
JOIN omop.measurement m ON m.measurement_id = f.image_feature_event_id
WHERE f.image_feature_event_field_concept_id = {c.MEASUREMENT_EVENT_FIELD}
GROUP BY io.image_occurrence_id
"""


@pytest.mark.services
def test_fixture_facts(fixture_db: OmopDb) -> None:
    with psycopg.connect(fixture_db.admin_url) as conn:
        assert _scalar(conn, "SELECT count(*) FROM omop.person") == 16
        imaged = conn.execute(
            "SELECT p.gender_concept_id, count(DISTINCT p.person_id) FROM omop.person p "
            "JOIN omop.image_occurrence io USING (person_id) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert imaged == [(c.MALE, 6), (c.FEMALE, 6)]
        modalities: dict[int, int] = dict(
            conn.execute(
                "SELECT modality_concept_id, count(*) FROM omop.image_occurrence GROUP BY 1"
            ).fetchall()
        )
        assert modalities == {c.CT: 12, c.MR: 8, c.XR: 4}
        assert _scalar(conn, "SELECT count(DISTINCT accession_id) FROM omop.image_occurrence") == 24
        spleen = conn.execute(
            "SELECT DISTINCT person_id FROM omop.procedure_occurrence "
            f"WHERE procedure_concept_id = {c.CT_SPLEEN} ORDER BY 1".encode()
        ).fetchall()
        assert [r[0] for r in spleen] == [1, 2, 3, 4, 5, 6]


@pytest.mark.services
def test_flip_worked_example_returns_six_rows(fixture_db: OmopDb) -> None:
    with psycopg.connect(fixture_db.reader_url) as conn:
        rows = conn.execute(FLIP_WORKED_EXAMPLE.encode()).fetchall()
    assert len(rows) == 6
    assert sorted(r[0] for r in rows) == [1, 2, 3, 4, 5, 6]
    assert all(r[3] is not None for r in rows)


@pytest.mark.services
def test_fixture_image_features_flatten_to_slice_thickness_and_manufacturer(fixture_db: OmopDb) -> None:
    with psycopg.connect(fixture_db.reader_url) as conn:
        rows = conn.execute(FEATURES.encode()).fetchall()
    assert len(rows) == 24
    assert all(r[1] is not None and float(r[1]) > 0 for r in rows)
    assert all(isinstance(r[2], str) and r[2] for r in rows)


@pytest.mark.services
def test_fixture_refuses_to_load_twice_without_replace(fixture_db: OmopDb) -> None:
    with pytest.raises(DataPresentError):
        seed(fixture_db.admin_url, fixture=True)
    seed(fixture_db.admin_url, fixture=True, replace=True)
    with psycopg.connect(fixture_db.admin_url) as conn:
        assert _scalar(conn, "SELECT count(*) FROM omop.person") == 16


# --- bulk mode ---------------------------------------------------------------------------------------------


def _fingerprint(url: str) -> dict[str, str]:
    """md5 of each table's full contents in key order."""
    out: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        for table in schema.TABLES:
            q = sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} AS t"
            ).format(sql.Identifier("omop", table))
            row = conn.execute(q).fetchone()
            assert row is not None
            out[table] = row[0]
    return out


@pytest.mark.services
def test_bulk_is_deterministic_per_seed(omop_db: OmopDb) -> None:
    seed(omop_db.admin_url, persons=300, seed=11)
    first = _fingerprint(omop_db.admin_url)
    seed(omop_db.admin_url, persons=300, seed=11, replace=True)
    assert _fingerprint(omop_db.admin_url) == first
    seed(omop_db.admin_url, persons=300, seed=12, replace=True)
    other = _fingerprint(omop_db.admin_url)
    assert other["person"] != first["person"]
    assert other["measurement"] != first["measurement"]


@pytest.mark.services
def test_bulk_data_is_plausible_and_fully_coded(omop_db: OmopDb) -> None:
    report = seed(omop_db.admin_url, persons=2000, seed=5)
    assert report.rows["person"] == 2000
    with psycopg.connect(omop_db.admin_url) as conn:
        genders: dict[int, int] = dict(
            conn.execute("SELECT gender_concept_id, count(*) FROM omop.person GROUP BY 1").fetchall()
        )
        assert set(genders) <= {0, c.MALE, c.FEMALE}
        assert genders[c.MALE] > 800 and genders[c.FEMALE] > 800
        for table in (
            "observation_period",
            "visit_occurrence",
            "procedure_occurrence",
            "image_occurrence",
            "image_feature",
            "condition_occurrence",
            "drug_exposure",
            "measurement",
        ):
            assert _scalar(conn, f"SELECT count(*) FROM omop.{table}") > 0, table  # type: ignore[operator]
        assert _scalar(
            conn, f"SELECT count(*) FROM omop.condition_occurrence WHERE condition_concept_id = {c.GI_BLEED}"
        )
        means: dict[int, float] = dict(
            conn.execute(
                "SELECT measurement_concept_id, avg(value_as_number)::float FROM omop.measurement GROUP BY 1"
            ).fetchall()
        )
        assert 25 < means[c.BMI] < 29
        assert 120 < means[c.SYSTOLIC_BP] < 130
        assert 76 < means[c.DIASTOLIC_BP] < 84
        assert 5.4 < means[c.HBA1C] < 6.2
        assert 110 < means[c.LDL_CHOLESTEROL] < 130
        # every concept id the data uses has a concept row
        unknown = conn.execute(
            """
            SELECT DISTINCT x FROM (
                SELECT gender_concept_id AS x FROM omop.person
                UNION SELECT visit_concept_id FROM omop.visit_occurrence
                UNION SELECT procedure_concept_id FROM omop.procedure_occurrence
                UNION SELECT modality_concept_id FROM omop.image_occurrence
                UNION SELECT anatomic_site_concept_id FROM omop.image_occurrence
                UNION SELECT image_feature_concept_id FROM omop.image_feature
                UNION SELECT image_feature_event_field_concept_id FROM omop.image_feature
                UNION SELECT condition_concept_id FROM omop.condition_occurrence
                UNION SELECT drug_concept_id FROM omop.drug_exposure
                UNION SELECT measurement_concept_id FROM omop.measurement
                UNION SELECT unit_concept_id FROM omop.measurement WHERE unit_concept_id IS NOT NULL
            ) u WHERE x NOT IN (SELECT concept_id FROM omop.concept)
            """
        ).fetchall()
        assert unknown == []
        # celecoxib users are findable through concept_ancestor, as in the Eunomia queries
        users = _scalar(
            conn,
            f"SELECT count(DISTINCT d.person_id) FROM omop.drug_exposure d JOIN omop.concept_ancestor a "
            f"ON a.descendant_concept_id = d.drug_concept_id WHERE a.ancestor_concept_id = {c.CELECOXIB}",
        )
        assert users and users > 0  # type: ignore[operator]
        # the image_feature -> measurement chain holds
        assert (
            _scalar(
                conn,
                "SELECT count(*) FROM omop.image_feature f LEFT JOIN omop.measurement m "
                "ON m.measurement_id = f.image_feature_event_id WHERE m.measurement_id IS NULL",
            )
            == 0
        )
        assert _scalar(conn, "SELECT count(*) - count(DISTINCT accession_id) FROM omop.image_occurrence") == 0
