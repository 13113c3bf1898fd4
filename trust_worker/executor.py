"""Running one statement as the read-only role, inside a READ ONLY transaction with local time limits.

This is layer 4 at run time: whatever reached us, PostgreSQL itself refuses writes (read-only transaction
on a role that holds no write privilege), stops runaway statements (``statement_timeout``) and cannot wait
forever on a lock. Errors come back as a safe category and SQLSTATE, never the server's message text,
which can quote data values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from omop.db import connect
from omop.errors import OmopFedError


@dataclass(frozen=True)
class Limits:
    """Per-statement time limits, in seconds, set with SET LOCAL for every task."""

    statement_timeout_s: float = 30.0
    lock_timeout_s: float = 5.0
    idle_in_transaction_timeout_s: float = 60.0
    work_mem_mb: int = 64


class ExecutionFailed(OmopFedError):
    """The statement did not complete. ``str(exc)`` is safe to release: no SQL, no data values."""

    def __init__(self, message: str, sqlstate: str | None = None, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.connection_lost = connection_lost


def safe_error_message(exc: psycopg.Error) -> str:
    """A message for the researcher that names the kind of failure but never echoes server text."""
    state = exc.sqlstate or "unknown"
    if isinstance(exc, pgerrors.QueryCanceled):
        return "the query exceeded the trust's statement timeout and was cancelled"
    if isinstance(exc, pgerrors.LockNotAvailable):
        return "the query waited too long for a lock and was cancelled"
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return f"the database refused an operation for the read-only role (SQLSTATE {state})"
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return f"the query tried to write in a read-only transaction (SQLSTATE {state})"
    if _connection_lost(exc):
        return "the trust's database is unavailable"
    return f"the database could not run the query (SQLSTATE {state})"


def _connection_lost(exc: psycopg.Error) -> bool:
    """Server gone or shutting down (SQLSTATE class 08, 57P01-57P03) or no SQLSTATE at all."""
    state = exc.sqlstate or ""
    return (isinstance(exc, psycopg.OperationalError) and not state) or state.startswith(("08", "57P0"))


class ReaderExecutor:
    """Holds one connection as the reader role and runs statements on it, reconnecting when it breaks.

    A persistent connection saves a TCP + authentication round trip per task; it is re-opened after any
    connection-level failure so a database restart costs one failed task at most.
    """

    def __init__(self, reader_url: str, limits: Limits | None = None) -> None:
        self.reader_url = reader_url
        self.limits = limits or Limits()
        self._conn: psycopg.Connection[Any] | None = None

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.reader_url, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def fetch_one(self, statement: str) -> tuple[Any, ...]:
        """Run ``statement`` in its own READ ONLY transaction and return its single row.

        A connection that turns out to be dead (database restarted since the last task) is replaced and
        the statement tried once more; a second failure is reported.
        """
        try:
            return self._fetch_one(statement)
        except ExecutionFailed as exc:
            if not exc.connection_lost:
                raise
        return self._fetch_one(statement)

    def _fetch_one(self, statement: str) -> tuple[Any, ...]:
        lim = self.limits
        try:
            conn = self.connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true),"
                    " set_config('idle_in_transaction_session_timeout', %s, true),"
                    " set_config('work_mem', %s, true), set_config('search_path', 'omop', true)",
                    (
                        f"{int(lim.statement_timeout_s * 1000)}ms",
                        f"{int(lim.lock_timeout_s * 1000)}ms",
                        f"{int(lim.idle_in_transaction_timeout_s * 1000)}ms",
                        f"{int(lim.work_mem_mb)}MB",
                    ),
                )
                # binary=True makes psycopg use the extended protocol, where PostgreSQL itself refuses a
                # string holding more than one statement: stacking is stopped below the validator too.
                cur.execute(statement, binary=True)
                row = cur.fetchone()
        except psycopg.Error as exc:
            lost = _connection_lost(exc) or bool(self._conn is not None and self._conn.broken)
            if lost:
                self.close()
            raise ExecutionFailed(safe_error_message(exc), exc.sqlstate, connection_lost=lost) from exc
        except OmopFedError as exc:  # could not connect at all
            raise ExecutionFailed("the trust's database is unavailable") from exc
        if row is None:
            raise ExecutionFailed("the aggregation returned no row")
        return tuple(row)
