"""Eunomia GiBleed: the published OHDSI counts, whole and as the union of three shards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omop.errors import UsageError
from tests.conftest import READER_TEST_PASSWORD, PgServer, create_database, drop_database
from trust_worker import concepts as c
from trust_worker.data_loading import DataPresentError
from trust_worker.eunomia_loader import Shard, build_select, eunomia_path, load_eunomia, parse_shard

# --- pure --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shard"),
    [("0/1", Shard(0, 1)), ("0/3", Shard(0, 3)), ("2/3", Shard(2, 3)), (" 1 / 2 ", Shard(1, 2))],
)
def test_parse_shard_accepts_k_of_n(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


def test_no_shard_means_everything() -> None:
    assert parse_shard(None) == Shard(0, 1)


@pytest.mark.parametrize("text", ["0/0", "3/2", "2/2", "x/y", "-1/3", "1", "1/", "/3", "1/3/5", "", "1.0/3"])
def test_parse_shard_rejects_malformed(text: str) -> None:
    with pytest.raises(UsageError):
        parse_shard(text)


@given(
    st.integers(min_value=1, max_value=1000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))
)
def test_parse_shard_roundtrips(kn: tuple[int, int]) -> None:
    k, n = kn
    assert parse_shard(f"{k}/{n}") == Shard(k, n)
    assert str(parse_shard(f"{k}/{n}")) == f"{k}/{n}"


def test_header_only_tables_are_skipped() -> None:
    assert build_select("concept_class", ["column0", "column1", "column2"], Shard(0, 1)) is None


def test_visit_columns_are_renamed_from_5_3() -> None:
    plan = build_select(
        "visit_occurrence",
        ["VISIT_OCCURRENCE_ID", "PERSON_ID", "ADMITTING_SOURCE_CONCEPT_ID", "DISCHARGE_TO_SOURCE_VALUE"],
        Shard(1, 3),
    )
    assert plan is not None
    columns, query = plan
    assert columns[0] == "visit_occurrence_id"
    assert '"ADMITTING_SOURCE_CONCEPT_ID"' in query and '"DISCHARGE_TO_SOURCE_VALUE"' in query
    assert "% 3 = 1" in query


def test_duplicate_id_tables_are_renumbered() -> None:
    plan = build_select(
        "drug_exposure",
        ["DRUG_EXPOSURE_ID", "PERSON_ID", "DRUG_CONCEPT_ID", "DRUG_EXPOSURE_START_DATE"],
        Shard(0, 1),
    )
    assert plan is not None
    assert "row_number()" in plan[1] and plan[1].startswith("SELECT __new_id")


def test_the_dataset_file_is_found() -> None:
    assert eunomia_path().name == "eunomia.duckdb"


# --- loaded ------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    persons: int
    male: int
    female: int
    gi_bleed: int
    celecoxib: int
    diclofenac: int


PUBLISHED = Counts(persons=2694, male=1321, female=1373, gi_bleed=479, celecoxib=1844, diclofenac=850)


def _person_sets(url: str) -> dict[str, set[int]]:
    def ids(conn: psycopg.Connection[tuple[int]], query: str) -> set[int]:
        return {r[0] for r in conn.execute(query.encode()).fetchall()}

    exposed = (
        "SELECT DISTINCT d.person_id FROM omop.drug_exposure d JOIN omop.concept_ancestor a "
        "ON a.descendant_concept_id = d.drug_concept_id WHERE a.ancestor_concept_id = {}"
    )
    with psycopg.connect(url) as conn:
        return {
            "persons": ids(conn, "SELECT person_id FROM omop.person"),
            "male": ids(conn, f"SELECT person_id FROM omop.person WHERE gender_concept_id = {c.MALE}"),
            "female": ids(conn, f"SELECT person_id FROM omop.person WHERE gender_concept_id = {c.FEMALE}"),
            "gi_bleed": ids(
                conn,
                "SELECT DISTINCT person_id FROM omop.condition_occurrence "
                f"WHERE condition_concept_id = {c.GI_BLEED}",
            ),
            "celecoxib": ids(conn, exposed.format(c.CELECOXIB)),
            "diclofenac": ids(conn, exposed.format(c.DICLOFENAC)),
        }


def _counts(sets: dict[str, set[int]]) -> Counts:
    return Counts(**{k: len(v) for k, v in sets.items()})


@pytest.fixture(scope="module")
def eunomia_urls(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """One database with all of Eunomia and three holding shards 0/3, 1/3, 2/3 (loaded once per module)."""
    from trust_worker.database_setup import init_db

    urls = {"full": create_database(pg_server.admin_url, "eunomia")}
    urls.update({f"{k}/3": create_database(pg_server.admin_url, f"shard{k}") for k in range(3)})
    try:
        for name, url in urls.items():
            init_db(url, READER_TEST_PASSWORD)
            load_eunomia(url, shard=parse_shard(None if name == "full" else name))
        yield urls
    finally:
        for url in urls.values():
            drop_database(pg_server.admin_url, url)


@pytest.mark.services
def test_full_load_reproduces_the_published_counts(eunomia_urls: dict[str, str]) -> None:
    assert _counts(_person_sets(eunomia_urls["full"])) == PUBLISHED


@pytest.mark.services
def test_union_of_three_shards_reproduces_the_published_counts(eunomia_urls: dict[str, str]) -> None:
    shards = [_person_sets(eunomia_urls[f"{k}/3"]) for k in range(3)]
    union = {key: set().union(*(s[key] for s in shards)) for key in shards[0]}
    assert _counts(union) == PUBLISHED
    # the shards are disjoint and each one holds only its own persons
    assert sum(len(s["persons"]) for s in shards) == PUBLISHED.persons
    for k, s in enumerate(shards):
        assert s["persons"] and all(p % 3 == k for p in s["persons"])


@pytest.mark.services
def test_shards_carry_the_whole_vocabulary(eunomia_urls: dict[str, str]) -> None:
    def vocab(url: str) -> tuple[int, int]:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM omop.concept), (SELECT count(*) FROM omop.concept_ancestor)"
            ).fetchone()
        assert row is not None
        return row

    full = vocab(eunomia_urls["full"])
    assert full[1] > 60000
    assert all(vocab(eunomia_urls[f"{k}/3"]) == full for k in range(3))


@pytest.mark.services
def test_gender_concepts_added_and_ids_unique(eunomia_urls: dict[str, str]) -> None:
    with psycopg.connect(eunomia_urls["full"]) as conn:
        names: dict[int, str] = dict(
            conn.execute("SELECT concept_id, concept_name FROM omop.concept WHERE concept_id IN (8507, 8532)")
        )
        assert names == {8507: "MALE", 8532: "FEMALE"}
        for table, key in (
            ("drug_exposure", "drug_exposure_id"),
            ("measurement", "measurement_id"),
            ("observation", "observation_id"),
        ):
            row = conn.execute(
                f"SELECT count(*), count(DISTINCT {key}) FROM omop.{table}".encode()
            ).fetchone()
            assert row is not None and row[0] == row[1] and row[0] > 0
        row = conn.execute("SELECT count(*) FROM omop.drug_exposure").fetchone()
        assert row == (67707,)  # duplicates renumbered, not dropped
        row = conn.execute("SELECT cdm_version FROM omop.cdm_source").fetchone()
        assert row == ("5.4",)


@pytest.mark.services
def test_reader_sees_eunomia(eunomia_urls: dict[str, str]) -> None:
    from trust_worker.database_setup import reader_url

    with psycopg.connect(reader_url(eunomia_urls["full"], READER_TEST_PASSWORD)) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone() == (2694,)


@pytest.mark.services
def test_loading_twice_needs_replace(eunomia_urls: dict[str, str]) -> None:
    with pytest.raises(DataPresentError):
        load_eunomia(eunomia_urls["2/3"], shard=Shard(2, 3))
    before = _counts(_person_sets(eunomia_urls["2/3"]))
    load_eunomia(eunomia_urls["2/3"], shard=Shard(2, 3), replace=True)
    assert _counts(_person_sets(eunomia_urls["2/3"])) == before


def test_shard_may_be_given_as_tuple_or_text() -> None:
    from trust_worker.eunomia_loader import as_shard

    assert as_shard((1, 3)) == as_shard("1/3") == as_shard(Shard(1, 3)) == Shard(1, 3)
    assert as_shard(None) == Shard(0, 1)
    with pytest.raises(UsageError):
        as_shard((3, 3))
    with pytest.raises(UsageError):
        as_shard(Shard(-1, 3))
