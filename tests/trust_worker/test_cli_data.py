"""``omopfed trust init-db | seed | load-eunomia`` as users run them: bad input -> one line, no traceback."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from omop.dburl import with_user
from tests.cli_runner import assert_one_line_error, run_omopfed
from tests.conftest import READER_TEST_PASSWORD, OmopDb, PgServer


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_omopfed("trust", *args, env=env, timeout=120)


@pytest.mark.parametrize("persons", ["-1", "10000001"])
def test_bad_persons_is_a_usage_error(persons: str) -> None:
    proc = run("seed", "--db-url", "postgresql://u:p@127.0.0.1:1/x", "--persons", persons)
    assert_one_line_error(proc, 2, "--persons")


@pytest.mark.parametrize("shard", ["0/0", "-1/3"])
def test_bad_shard_is_a_usage_error(shard: str) -> None:
    proc = run("load-eunomia", "--db-url", "postgresql://u:p@127.0.0.1:1/x", f"--shard={shard}")
    assert_one_line_error(proc, 2, "--shard")


def test_missing_db_url_is_a_usage_error() -> None:
    assert_one_line_error(run("init-db", "--reader-password", "long-enough"), 2, "OMOPFED_DB_URL")


def test_not_a_postgres_url() -> None:
    assert_one_line_error(run("init-db", "--db-url", "mysql://x@y/z"), 2, "not a PostgreSQL URL")


def test_unreachable_server() -> None:
    proc = run(
        "init-db", "--db-url", "postgresql://u:secret@127.0.0.1:1/x", "--reader-password", "long-enough"
    )
    assert_one_line_error(proc, 1, "cannot connect")
    assert "secret" not in proc.stderr


@pytest.mark.services
def test_wrong_password(pg_server: PgServer) -> None:
    if not pg_server.embedded:
        pytest.skip("system PostgreSQL in CI may use trust authentication")
    url = with_user(pg_server.admin_url, "postgres", "definitely-wrong")
    proc = run("init-db", "--db-url", url, "--reader-password", "long-enough")
    assert_one_line_error(proc, 1, "cannot connect")
    assert "definitely-wrong" not in proc.stderr


@pytest.mark.services
def test_foreign_data_in_omop(empty_db: str) -> None:
    with psycopg.connect(empty_db) as conn:
        conn.execute("CREATE SCHEMA omop; CREATE TABLE omop.patients (id int)")
    proc = run("init-db", "--db-url", empty_db, "--reader-password", READER_TEST_PASSWORD)
    assert_one_line_error(proc, 1, "not ours")
    with psycopg.connect(empty_db) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'omop'").fetchone()
    assert row == (1,)


@pytest.mark.services
def test_seed_before_init_db_says_what_to_do(empty_db: str) -> None:
    assert_one_line_error(run("seed", "--db-url", empty_db, "--fixture"), 1, "init-db")


@pytest.mark.services
def test_init_db_then_fixture_seed_then_refusal_without_replace(empty_db: str) -> None:
    sqlalchemy_url = empty_db.replace("postgresql://", "postgresql+psycopg://", 1)
    proc = run("init-db", "--db-url", sqlalchemy_url, env={"OMOPFED_READER_PASSWORD": READER_TEST_PASSWORD})
    assert proc.returncode == 0, proc.stderr
    assert run("init-db", "--db-url", empty_db).returncode == 0  # idempotent, keeps the password
    proc = run("seed", "--fixture", env={"OMOPFED_DB_URL": empty_db})
    assert proc.returncode == 0, proc.stderr
    assert "16 persons" in proc.stdout
    assert_one_line_error(run("seed", "--db-url", empty_db, "--persons", "50"), 1, "--replace")
    proc = run("seed", "--db-url", empty_db, "--persons", "50", "--seed", "4", "--replace")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(with_user(empty_db, "data_analyst_reader", READER_TEST_PASSWORD)) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone() == (50,)


@pytest.mark.services
def test_load_eunomia_shard(omop_db: OmopDb) -> None:
    proc = run("load-eunomia", "--db-url", omop_db.admin_url, "--shard", "1/4")
    assert proc.returncode == 0, proc.stderr
    assert "shard 1/4" in proc.stdout
    with psycopg.connect(omop_db.reader_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE person_id % 4 <> 1) FROM person"
        ).fetchone()
    assert row is not None and row[0] > 500 and row[1] == 0
