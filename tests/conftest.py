"""Real servers for the tests: embedded PostgreSQL and Valkey by default, the system ones on request.

Set ``OMOPFED_TEST_PG_URL`` (a superuser URL) and/or ``OMOPFED_TEST_REDIS_URL`` to run against servers
that are already running; each test still gets its own database, and the Redis database is flushed
after each test that used it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from omop.dburl import with_database

READER_TEST_PASSWORD = "reader-test-password"


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create databases on, with a superuser URL."""

    admin_url: str  # superuser, database "postgres"
    embedded: bool


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="omopfed-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(tmp_root: Path) -> Iterator[PgServer]:
    url = os.environ.get("OMOPFED_TEST_PG_URL")
    if url:
        yield PgServer(admin_url=url, embedded=False)
        return
    from omopfed.localservices import start_postgres

    server = start_postgres(tmp_root / "pg")
    try:
        yield PgServer(admin_url=server.url(), embedded=True)
    finally:
        server.stop()


def create_database(admin_url: str, prefix: str = "t") -> str:
    """Create an empty database with a unique name and return its superuser URL."""
    name = f"omopfed_{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def drop_database(admin_url: str, db_url: str) -> None:
    from omop.dburl import database_name

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(db_url)))
        )


@pytest.fixture
def empty_db(pg_server: PgServer) -> Iterator[str]:
    """A new, empty database for one test (superuser URL); dropped afterwards."""
    url = create_database(pg_server.admin_url)
    try:
        yield url
    finally:
        drop_database(pg_server.admin_url, url)


@pytest.fixture(scope="session")
def redis_base_url(tmp_root: Path) -> Iterator[str]:
    url = os.environ.get("OMOPFED_TEST_REDIS_URL")
    if url:
        yield url
        return
    from omopfed.localservices import start_valkey

    server = start_valkey(tmp_root / "valkey")
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_base_url: str) -> Iterator[str]:
    """A Redis URL whose database is flushed after the test."""
    import redis

    yield redis_base_url
    redis.Redis.from_url(redis_base_url).flushdb()


@dataclass
class OmopDb:
    """A database with schema ``omop`` and the reader roles (``init_db``): superuser and reader URLs."""

    admin_url: str
    reader_url: str


@pytest.fixture
def omop_db(pg_server: PgServer) -> Iterator[OmopDb]:
    """A fresh database after ``init_db``, reader password ``READER_TEST_PASSWORD``; dropped afterwards."""
    from trust_worker.database_setup import init_db, reader_url

    url = create_database(pg_server.admin_url, "omop")
    try:
        init_db(url, READER_TEST_PASSWORD)
        yield OmopDb(admin_url=url, reader_url=reader_url(url, READER_TEST_PASSWORD))
    finally:
        drop_database(pg_server.admin_url, url)


@pytest.fixture
def fixture_db(omop_db: OmopDb) -> OmopDb:
    """``omop_db`` loaded with the FLIP-like fixture data (``trust_worker.synthetic_data`` fixture mode)."""
    from trust_worker.synthetic_data import seed

    seed(omop_db.admin_url, fixture=True)
    return omop_db


STACK_FIXTURES = {"stack", "deployment"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that start a whole local federation: they use embedded servers whatever OMOPFED_TEST_*
    says, so the second CI pass against the system servers skips them (``-m "services and not stack"``)."""
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
