"""The shipped DDL: what it declares (pure) and that PostgreSQL accepts it, twice."""

from __future__ import annotations

import re

import psycopg
import pytest

from omop import schema
from trust_worker.schema_checks import require_compatible_schema, schema_conflicts

REQUIRED = {
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "condition_era",
    "drug_era",
    "concept",
    "concept_ancestor",
    "concept_relationship",
    "vocabulary",
    "domain",
    "concept_class",
    "cdm_source",
    "image_occurrence",
    "image_feature",
}


def test_declares_every_required_table() -> None:
    assert REQUIRED <= set(schema.TABLES)
    assert len(schema.TABLES) == len(set(schema.TABLES))


def test_image_occurrence_columns_follow_mi_cdm_with_flip_accession_id() -> None:
    cols = {c.name: c.type for c in schema.table_columns()["image_occurrence"]}
    assert list(cols) == [
        "image_occurrence_id",
        "person_id",
        "procedure_occurrence_id",
        "visit_occurrence_id",
        "modality_concept_id",
        "anatomic_site_concept_id",
        "accession_id",
        "image_occurrence_date",
        "image_study_uid",
        "image_series_uid",
        "wadors_uri",
        "local_path",
    ]
    assert cols["accession_id"] == "character varying(50)"
    assert cols["image_study_uid"] == "character varying(100)"
    assert cols["image_series_uid"] == "character varying(100)"
    assert cols["wadors_uri"] == "character varying(255)"
    assert cols["local_path"] == "character varying(255)"


def test_image_feature_columns() -> None:
    names = [c.name for c in schema.table_columns()["image_feature"]]
    assert names == [
        "image_feature_id",
        "person_id",
        "image_occurrence_id",
        "image_feature_concept_id",
        "image_feature_type_concept_id",
        "image_finding_concept_id",
        "image_finding_id",
        "anatomic_site_concept_id",
        "alg_system",
        "alg_datetime",
        "image_feature_event_field_concept_id",
        "image_feature_event_id",
    ]


def test_every_person_table_has_a_person_index_or_key() -> None:
    by_table: dict[str, list[str]] = {}
    for index in schema.indexes():
        cols = re.search(r"\(([\w, ]+)\)", index.create_sql)
        assert cols is not None
        by_table.setdefault(index.table, []).append(cols.group(1))
    for table, columns in schema.table_columns().items():
        if any(c.name == "person_id" for c in columns) and table != "death":
            assert "person_id" in by_table.get(table, []) or table == "person", table


def test_indexes_name_existing_tables_and_columns() -> None:
    tables = schema.table_columns()
    names = [i.name for i in schema.indexes()]
    assert len(names) == len(set(names))
    for index in schema.indexes():
        cols = re.search(r"\(([\w, ]+)\)", index.create_sql)
        assert cols is not None
        known = {c.name for c in tables[index.table]}
        assert {c.strip() for c in cols.group(1).split(",")} <= known, index.name


def test_no_foreign_keys_in_the_ddl() -> None:
    assert "REFERENCES" not in schema.DDL.upper()


@pytest.mark.services
def test_ddl_loads_twice_and_matches_its_own_declaration(empty_db: str) -> None:
    with psycopg.connect(empty_db) as conn:
        conn.execute(schema.DDL)
        conn.execute(schema.DDL)
        assert schema_conflicts(conn) == []
        require_compatible_schema(conn)
        present = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'omop'").fetchall()
        }
        assert present == set(schema.TABLES)
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'omop'").fetchall()
        }
        assert {i.name for i in schema.indexes()} <= indexes
