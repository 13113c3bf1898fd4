"""Defence layer 4: the read-only role, proven by connecting as it, and the worker's start-up check."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from omop import schema
from omop.dburl import with_database
from omop.errors import UsageError
from tests.conftest import READER_TEST_PASSWORD, OmopDb, PgServer, create_database, drop_database
from trust_worker.database_setup import (
    BASE_ROLE,
    DEV_READER_PASSWORD,
    READER_ROLE,
    check_reader_password,
    init_db,
    reader_role_problems,
    reader_url,
)
from trust_worker.schema_checks import ForeignSchemaError

# --- pure --------------------------------------------------------------------------------------------------


def test_new_role_needs_a_password() -> None:
    with pytest.raises(UsageError, match="no password"):
        check_reader_password(None, role_exists=False, allow_dev_password=False)


def test_dev_password_only_when_allowed() -> None:
    assert check_reader_password(None, role_exists=False, allow_dev_password=True) == DEV_READER_PASSWORD


def test_existing_role_keeps_its_password_when_none_given() -> None:
    assert check_reader_password(None, role_exists=True, allow_dev_password=False) is None


def test_given_password_wins_and_must_be_long_enough() -> None:
    assert check_reader_password("long-enough", role_exists=True, allow_dev_password=True) == "long-enough"
    with pytest.raises(UsageError, match="too short"):
        check_reader_password("short", role_exists=False, allow_dev_password=True)
    with pytest.raises(UsageError, match="empty"):
        check_reader_password("", role_exists=True, allow_dev_password=True)


def test_bad_limits_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        init_db("postgresql://nobody@127.0.0.1:1/x", "long-enough", statement_timeout_ms=0)
    with pytest.raises(UsageError):
        init_db("postgresql://nobody@127.0.0.1:1/x", "long-enough", connection_limit=0)


# --- as the reader -----------------------------------------------------------------------------------------


def _reader(db: OmopDb) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(db.reader_url, autocommit=True)


def _superuser(db: OmopDb) -> str:
    with psycopg.connect(db.admin_url) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    return str(row[0])


def _forbidden_statements(db: OmopDb) -> list[str]:
    return [
        "INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth, race_concept_id, "
        "ethnicity_concept_id) VALUES (999, 8507, 1970, 0, 0)",
        "UPDATE omop.person SET year_of_birth = 1900",
        "DELETE FROM omop.person",
        "TRUNCATE omop.person",
        "CREATE TABLE omop.evil (a int)",
        "CREATE TABLE public.evil (a int)",
        "CREATE TEMP TABLE evil (a int)",
        "CREATE SCHEMA evil",
        "SELECT * FROM pg_authid",
        "SELECT * FROM public.secret",
        f'SET ROLE "{_superuser(db)}"',
    ]


@pytest.fixture
def secret_table(fixture_db: OmopDb) -> OmopDb:
    with psycopg.connect(fixture_db.admin_url) as conn:
        conn.execute("CREATE TABLE public.secret (x text)")
        conn.execute("INSERT INTO public.secret VALUES ('do not read')")
    return fixture_db


@pytest.mark.services
def test_reader_can_select_every_omop_table(fixture_db: OmopDb) -> None:
    with _reader(fixture_db) as conn:
        for table in schema.TABLES:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("omop", table))).fetchone()
        row = conn.execute("SELECT count(*) FROM person").fetchone()  # search_path = omop
        assert row == (16,)


@pytest.mark.services
def test_reader_session_settings(omop_db: OmopDb) -> None:
    with _reader(omop_db) as conn:
        show = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            for name in ("default_transaction_read_only", "statement_timeout", "search_path")
        }
        assert show["default_transaction_read_only"] == ("on",)
        assert show["statement_timeout"] == ("30s",)
        assert show["search_path"] == ("omop",)
        row = conn.execute(
            "SELECT rolconnlimit, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert row == (20, False, False, False, False)


@pytest.mark.services
def test_reader_cannot_write_or_escape_in_its_default_read_only_transactions(secret_table: OmopDb) -> None:
    with _reader(secret_table) as conn:
        for stmt in _forbidden_statements(secret_table):
            with pytest.raises(psycopg.Error):
                conn.execute(stmt.encode())


@pytest.mark.services
def test_reader_lacks_the_privileges_even_in_a_read_write_transaction(secret_table: OmopDb) -> None:
    """Turning read-only off (which any role may do) must not help: the privileges are missing too."""
    with _reader(secret_table) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for stmt in _forbidden_statements(secret_table):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt.encode())
        row = conn.execute("SELECT count(*) FROM omop.person").fetchone()
        assert row == (16,)


@pytest.mark.services
def test_reader_is_not_in_the_read_all_data_roles(omop_db: OmopDb) -> None:
    with _reader(omop_db) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('pg_read_all_data', 'pg_write_all_data') "
            "AND pg_has_role(current_user, oid, 'MEMBER')"
        ).fetchall()
        assert rows == []


@pytest.mark.services
def test_set_role_to_the_base_role_is_refused_on_postgresql_16_and_later(omop_db: OmopDb) -> None:
    with _reader(omop_db) as conn:
        if conn.info.server_version < 160000:
            pytest.skip(
                "membership SET option exists from PostgreSQL 16 on (the base role has no more rights)"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SET ROLE "{BASE_ROLE}"'.encode())


@pytest.mark.services
def test_wrong_reader_password_is_refused(omop_db: OmopDb, pg_server: PgServer) -> None:
    if not pg_server.embedded:
        pytest.skip("system PostgreSQL in CI may use trust authentication")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(reader_url(omop_db.admin_url, "not-the-password")).close()


# --- idempotence, several databases ------------------------------------------------------------------------


@pytest.mark.services
def test_init_db_twice_keeps_data_and_privileges(fixture_db: OmopDb) -> None:
    init_db(fixture_db.admin_url, None)  # existing role: keeps its password
    init_db(fixture_db.admin_url, READER_TEST_PASSWORD)
    with _reader(fixture_db) as conn:
        assert conn.execute("SELECT count(*) FROM omop.person").fetchone() == (16,)
        assert reader_role_problems(conn) == []


@pytest.mark.services
def test_second_database_in_the_cluster_does_not_break_the_first(
    fixture_db: OmopDb, pg_server: PgServer
) -> None:
    second = create_database(pg_server.admin_url, "second")
    try:
        init_db(second, READER_TEST_PASSWORD)
        with psycopg.connect(reader_url(second, READER_TEST_PASSWORD), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM omop.person").fetchone() == (0,)
            assert reader_role_problems(conn) == []
        with _reader(fixture_db) as conn:
            assert conn.execute("SELECT count(*) FROM omop.person").fetchone() == (16,)
            assert reader_role_problems(conn) == []
    finally:
        drop_database(pg_server.admin_url, second)


@pytest.mark.services
def test_reader_cannot_connect_to_a_database_it_was_not_given(omop_db: OmopDb, pg_server: PgServer) -> None:
    other = create_database(pg_server.admin_url, "other")
    try:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(other.rsplit("/", 1)[1])
                )
            )
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(reader_url(other, READER_TEST_PASSWORD)).close()
    finally:
        drop_database(pg_server.admin_url, other)


# --- foreign data ------------------------------------------------------------------------------------------


@pytest.fixture
def plain_db(pg_server: PgServer) -> Iterator[str]:
    url = create_database(pg_server.admin_url, "foreign")
    try:
        yield url
    finally:
        drop_database(pg_server.admin_url, url)


def _public_temp_allowed(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT has_database_privilege('public', current_database(), 'TEMPORARY')"
        ).fetchone()
    assert row is not None
    return bool(row[0])


@pytest.mark.parametrize(
    "setup",
    [
        "CREATE SCHEMA omop; CREATE TABLE omop.patients (id int)",
        "CREATE SCHEMA omop; CREATE TABLE omop.person (person_id bigint, name text)",
        "CREATE SCHEMA omop; CREATE VIEW omop.concept AS SELECT 1 AS concept_id",
    ],
    ids=["extra-table", "incompatible-columns", "view-under-our-name"],
)
@pytest.mark.services
def test_foreign_omop_schema_is_refused_and_nothing_changes(plain_db: str, setup: str) -> None:
    with psycopg.connect(plain_db) as conn:
        conn.execute(setup.encode())
    assert _public_temp_allowed(plain_db)
    with pytest.raises(ForeignSchemaError) as err:
        init_db(plain_db, READER_TEST_PASSWORD)
    message = str(err.value)
    assert "\n" not in message and "nothing was changed" in message
    with psycopg.connect(plain_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'omop'")}
    assert "observation_period" not in tables
    assert _public_temp_allowed(plain_db)  # the database grants were not touched either


# --- reader_role_problems ----------------------------------------------------------------------------------


@pytest.mark.services
def test_reader_has_no_problems(omop_db: OmopDb) -> None:
    with _reader(omop_db) as conn:
        assert reader_role_problems(conn) == []


@pytest.mark.services
def test_superuser_is_reported(omop_db: OmopDb) -> None:
    with psycopg.connect(omop_db.admin_url) as conn:
        problems = reader_role_problems(conn)
    assert any("superuser" in p for p in problems)
    assert any("INSERT/UPDATE/DELETE/TRUNCATE" in p for p in problems)


def _as_role(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    """SET ROLE for a superuser session, bounding temp files first as init-db bounds the reader's.

    A role reached by SET ROLE keeps the session's settings, and a superuser session has no
    temp_file_limit: without one the scratch role would (rightly) be reported for unbounded temp files.
    """
    conn.execute("SET temp_file_limit = '1GB'")
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def scratch_role(omop_db: OmopDb) -> Iterator[str]:
    """A throw-away NOLOGIN role (roles are cluster-wide, so it is dropped again)."""
    name = f"omopfed_scratch_{secrets.token_hex(4)}"
    with psycopg.connect(omop_db.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(BASE_ROLE), sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(omop_db.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        ("GRANT INSERT ON omop.person TO {role}", "INSERT/UPDATE/DELETE/TRUNCATE omop.person"),
        ("GRANT TRUNCATE ON omop.concept TO {role}", "INSERT/UPDATE/DELETE/TRUNCATE omop.concept"),
        ("GRANT TEMPORARY ON DATABASE {db} TO {role}", "TEMPORARY"),
        ("GRANT CREATE ON DATABASE {db} TO {role}", "CREATE schemas"),
        ("GRANT CREATE ON SCHEMA omop TO {role}", "CREATE objects in schema omop"),
        ("GRANT pg_read_all_data TO {role}", "pg_read_all_data"),
        ("GRANT pg_write_all_data TO {role}", "pg_write_all_data"),
        ("ALTER ROLE {role} CREATEDB", "CREATEDB"),
        ("ALTER ROLE {role} CREATEROLE", "CREATEROLE"),
        ("ALTER ROLE {role} BYPASSRLS", "BYPASSRLS"),
    ],
)
@pytest.mark.services
def test_each_dangerous_privilege_is_reported(
    omop_db: OmopDb, scratch_role: str, grant: str, expected: str
) -> None:
    dbname = omop_db.admin_url.rsplit("/", 1)[1]
    with psycopg.connect(omop_db.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL(grant).format(role=sql.Identifier(scratch_role), db=sql.Identifier(dbname)))
        _as_role(conn, scratch_role)
        problems = reader_role_problems(conn)
    assert any(expected in p for p in problems), problems


@pytest.mark.services
def test_scratch_role_with_only_the_base_grants_is_clean(omop_db: OmopDb, scratch_role: str) -> None:
    """The control for the test above: the same role without the extra grant has no problems."""
    with psycopg.connect(omop_db.admin_url, autocommit=True) as conn:
        _as_role(conn, scratch_role)
        assert reader_role_problems(conn) == []


# --- temp_file_limit ---------------------------------------------------------------------------------------


@pytest.mark.services
def test_reader_has_a_temp_file_limit_and_may_set_its_own(omop_db: OmopDb) -> None:
    with _reader(omop_db) as conn:
        assert conn.execute("SHOW temp_file_limit").fetchone() == ("1GB",)
        with conn.transaction():
            # what the worker does per query with the policy's value (PostgreSQL 15+: GRANT SET)
            conn.execute("SELECT set_config('temp_file_limit', '7MB', true)")
            assert conn.execute("SHOW temp_file_limit").fetchone() == ("7MB",)
        assert conn.execute("SHOW temp_file_limit").fetchone() == ("1GB",)


@pytest.mark.services
def test_unbounded_temp_files_are_a_problem_until_the_role_may_bound_them(
    omop_db: OmopDb, scratch_role: str
) -> None:
    with psycopg.connect(omop_db.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(scratch_role)))  # no limit, no right
        problems = reader_role_problems(conn)
        assert len(problems) == 1 and "temp_file_limit" in problems[0], problems
        assert "superuser" in problems[0] and "GRANT SET ON PARAMETER" in problems[0]
        conn.execute("RESET ROLE")
        conn.execute(
            sql.SQL("GRANT SET ON PARAMETER temp_file_limit TO {}").format(sql.Identifier(scratch_role))
        )
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(scratch_role)))
        assert reader_role_problems(conn) == []
        conn.execute("RESET ROLE")
        conn.execute(
            sql.SQL("REVOKE SET ON PARAMETER temp_file_limit FROM {}").format(sql.Identifier(scratch_role))
        )


@pytest.mark.services
def test_an_owner_without_superuser_is_told_what_a_superuser_must_run(omop_db: OmopDb) -> None:
    """temp_file_limit is superuser-only: a CREATEROLE owner gets everything else and a clear note."""
    from trust_worker.database_setup import _bound_temp_files

    owner = f"omopfed_owner_{secrets.token_hex(4)}"
    with psycopg.connect(omop_db.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN CREATEROLE").format(sql.Identifier(owner)))
    try:
        with psycopg.connect(omop_db.admin_url) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
            notes = _bound_temp_files(conn, 512)
            conn.rollback()
        assert len(notes) == 1
        assert f"ALTER ROLE {READER_ROLE} SET temp_file_limit = '512MB'" in notes[0]
        assert f"GRANT SET ON PARAMETER temp_file_limit TO {READER_ROLE}" in notes[0]
        assert "superuser" in notes[0]
    finally:
        with psycopg.connect(omop_db.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))


def test_bad_temp_file_limit_is_a_usage_error() -> None:
    for bad in (0, -1, 2 * 1024 * 1024):
        with pytest.raises(UsageError, match="temp file limit"):
            init_db("postgresql://nobody@127.0.0.1:1/x", "long-enough", temp_file_limit_mb=bad)


@pytest.mark.services
def test_init_db_accepts_sqlalchemy_style_urls(plain_db: str) -> None:
    init_db(plain_db.replace("postgresql://", "postgresql+psycopg://", 1), READER_TEST_PASSWORD)
    with psycopg.connect(reader_url(plain_db, READER_TEST_PASSWORD), autocommit=True) as conn:
        assert reader_role_problems(conn) == []


def test_reader_url_swaps_only_the_credentials() -> None:
    url = reader_url("postgresql://admin:pw@db.example:5433/omop", "s3cret-pw")
    assert url == "postgresql://data_analyst_reader:s3cret-pw@db.example:5433/omop"
    assert READER_ROLE in url
    assert with_database(url, "x").endswith("/x")


@pytest.mark.services
def test_concurrent_init_db_on_several_databases_of_one_cluster(pg_server: PgServer) -> None:
    """Roles are shared by all databases: simultaneous runs must queue, not fail mid-way."""
    import threading

    urls = [create_database(pg_server.admin_url, f"conc{i}") for i in range(3)]
    errors: list[BaseException] = []

    def run(url: str) -> None:
        try:
            for _ in range(3):
                init_db(url, READER_TEST_PASSWORD)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for url in urls:
            with psycopg.connect(reader_url(url, READER_TEST_PASSWORD), autocommit=True) as conn:
                assert reader_role_problems(conn) == []
    finally:
        for url in urls:
            drop_database(pg_server.admin_url, url)
