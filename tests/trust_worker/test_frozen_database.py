"""A database that stops answering costs a worker at most the statement timeout plus a margin.

A frozen server (SIGSTOP, a hung host) enforces no statement timeout of its own and still acknowledges
TCP, so without a client-side deadline the worker would wait for as long as the database is frozen.
Here one real backend, the one serving the worker's reader connection, is stopped mid-statement.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from tests.conftest import OmopDb
from trust_worker.executor import ABANDON_GRACE_S, ExecutionFailed, ReaderExecutor
from trust_worker.policy_file import TrustPolicy

pytestmark = pytest.mark.services


def test_a_frozen_database_is_abandoned_after_the_statement_timeout(fixture_db: OmopDb) -> None:
    limits = TrustPolicy(statement_timeout_s=1).limits()
    executor = ReaderExecutor(fixture_db.reader_url)
    assert executor.fetch_one("SELECT 1", limits) == (1,)
    backend = executor.connection().info.backend_pid
    try:
        os.kill(backend, signal.SIGSTOP)
    except PermissionError:
        pytest.skip("this account may not signal the database server's processes")
    started = time.monotonic()
    try:
        with pytest.raises(ExecutionFailed) as failed:
            executor.fetch_one("SELECT count(*) FROM omop.person", limits)
        waited = time.monotonic() - started
    finally:
        os.kill(backend, signal.SIGCONT)
        with psycopg.connect(fixture_db.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    assert failed.value.cause == "database_unresponsive" and failed.value.connection_lost
    # not the frozen time (unbounded), but the statement timeout plus the grace, plus scheduling slack
    assert waited < limits.statement_timeout_s + ABANDON_GRACE_S + 10
    assert executor.fetch_one("SELECT 1", limits) == (1,)  # a new connection, the worker goes on
    executor.close()
