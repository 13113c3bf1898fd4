"""Running one statement as the read-only role, inside a READ ONLY transaction with the policy's limits.

This is layer 4 at run time: whatever reached us, PostgreSQL itself refuses writes (read-only transaction
on a role that holds no write privilege), stops runaway statements (``statement_timeout``), cannot wait
forever on a lock and cannot fill the disk with temporary files (``temp_file_limit``).

The limits come with every call (``fetch_one(statement, limits)``), built from the trust policy
(``TrustPolicy.limits()``): there is no default inside the executor, so no caller can end up running
with limits other than the ones the trust's governance team wrote down.

A failure is an ``ExecutionFailed`` whose fields (the kind of failure, SQLSTATE, exception class, the limit
involved) are for the trust's own staff: the pipeline writes them to the audit log and answers the
researcher with one fixed wording whatever happened (``omop.protocol.EXECUTION_FAILED_DETAIL``). A
researcher who can make a query fail, or run slowly, only when some person has some property must not
learn *how* it failed. The server's message text is never kept anywhere, since it can quote data values.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from omop.errors import ExecutionFailed as ExecutionFailed
from omop.errors import OmopFedError
from trust_worker.db import connect

log = logging.getLogger("omopfed.trust")

TEMP_FILE_LIMIT = "temp_file_limit"


@dataclass(frozen=True)
class Limits:
    """Per-transaction limits set with ``set_config(..., true)`` for every statement.

    No defaults on purpose: the only source is the trust policy (``TrustPolicy.limits()``).
    """

    statement_timeout_s: float
    lock_timeout_s: float
    idle_in_transaction_timeout_s: float
    work_mem_mb: int
    temp_file_limit_mb: int


def classify(exc: psycopg.Error, limits: Limits) -> tuple[str, str]:
    """(cause, staff description) of a psycopg error; never the server's message text."""
    state = exc.sqlstate or "none"
    where = f"(SQLSTATE {state}, {type(exc).__name__})"
    if isinstance(exc, pgerrors.QueryCanceled):
        return (
            "statement_timeout",
            f"cancelled: statement timeout of {limits.statement_timeout_s:g} s exceeded, or an administrator "
            f"cancelled it {where}",
        )
    if isinstance(exc, pgerrors.LockNotAvailable):
        return "lock_timeout", f"lock timeout of {limits.lock_timeout_s:g} s exceeded {where}"
    if isinstance(exc, pgerrors.ConfigurationLimitExceeded):
        return (
            "temp_file_limit",
            f"temporary files exceeded temp_file_limit of {limits.temp_file_limit_mb} MB {where}",
        )
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return "insufficient_privilege", f"the read-only role was refused an operation {where}"
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return "read_only", f"the statement tried to write in a read-only transaction {where}"
    if _connection_lost(exc):
        return "connection_lost", f"the database connection was lost {where}"
    return "database_error", f"the database could not run the statement {where}"


def _milliseconds(seconds: float) -> str:
    """A PostgreSQL duration of at least 1 ms: 0 would mean *no* timeout, never what a policy meant."""
    return f"{max(1, round(seconds * 1000))}ms"


def _connection_lost(exc: psycopg.Error) -> bool:
    """Server gone or shutting down (SQLSTATE class 08, 57P01-57P03) or no SQLSTATE at all."""
    state = exc.sqlstate or ""
    return (isinstance(exc, psycopg.OperationalError) and not state) or state.startswith(("08", "57P0"))


@dataclass(frozen=True)
class TempFileControl:
    """Whether the connected role may set ``temp_file_limit`` itself, and the value it has without.

    ``temp_file_limit`` is a superuser-only setting. PostgreSQL 15+ lets a superuser grant it to the
    reader (``GRANT SET ON PARAMETER temp_file_limit``, done by ``omopfed trust init-db``); then the
    worker applies the policy's value per transaction. Otherwise the role's own setting (``ALTER ROLE
    ... SET temp_file_limit``, also done by init-db as a superuser) is what bounds the query.
    ``role_limit_kb`` None means unbounded.
    """

    settable: bool
    role_limit_kb: int | None

    def problem(self) -> str | None:
        """Why temp files would be unbounded for this role, or None when they are bounded."""
        if self.settable or self.role_limit_kb is not None:
            return None
        return (
            "has no temp_file_limit and may not set one, so a query could fill the disk with temporary "
            "files: run `omopfed trust init-db` as a superuser, or have a superuser run ALTER ROLE "
            "data_analyst_reader SET temp_file_limit = '1024MB' and (PostgreSQL 15+) GRANT SET ON "
            "PARAMETER temp_file_limit TO data_analyst_reader"
        )


def temp_file_control(conn: psycopg.Connection[Any]) -> TempFileControl:
    """Ask the server what the connected role may do about ``temp_file_limit`` (read-only queries)."""
    if conn.info.server_version >= 150000:
        probe = "SELECT has_parameter_privilege('temp_file_limit', 'SET')"
    else:  # no parameter privileges before 15: only a superuser may set it
        probe = "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    row = conn.execute(
        f"SELECT ({probe}), setting FROM pg_catalog.pg_settings WHERE name = 'temp_file_limit'"
    ).fetchone()
    if row is None:
        return TempFileControl(settable=False, role_limit_kb=None)
    kb = int(row[1])
    return TempFileControl(settable=bool(row[0]), role_limit_kb=None if kb < 0 else kb)


#: How long after the statement timeout the worker gives up on a database that stopped answering.
ABANDON_GRACE_S = 5.0
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def _shut_down_socket(conn: psycopg.Connection[Any]) -> None:
    """Make a connection blocked on a silent server fail now (shutting the socket down wakes the wait)."""
    with contextlib.suppress(Exception):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


class ReaderExecutor:
    """Holds one connection as the reader role and runs statements on it, reconnecting when it breaks.

    A persistent connection saves a TCP + authentication round trip per task; it is re-opened after any
    connection-level failure so a database restart costs one failed task at most.
    """

    def __init__(self, reader_url: str) -> None:
        self.reader_url = reader_url
        self._conn: psycopg.Connection[Any] | None = None
        self._temp: TempFileControl | None = None
        self._warned_role_limit: int | None = None

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            # keepalives: a database host that vanished from the network is noticed within about a minute
            self._conn = connect(self.reader_url, autocommit=True, **KEEPALIVES)
            self._temp = None
        return self._conn

    def temp_files(self) -> TempFileControl:
        """What this connection's role may do about ``temp_file_limit`` (asked once per connection)."""
        conn = self.connection()
        if self._temp is None:
            self._temp = temp_file_control(conn)
        return self._temp

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._temp = None

    def fetch_one(self, statement: str, limits: Limits) -> tuple[Any, ...]:
        """Run ``statement`` in its own READ ONLY transaction under ``limits``; return its single row.

        A connection that turns out to be dead (database restarted since the last task) is replaced and
        the statement tried once more; a second failure is reported. A database that stops answering
        altogether (a frozen server enforces no statement timeout) is abandoned after the statement
        timeout plus ``ABANDON_GRACE_S``, and not tried again for this statement.
        """
        try:
            return self._guarded(statement, limits)
        except ExecutionFailed as exc:
            if not exc.connection_lost or exc.cause == "database_unresponsive":
                raise
        return self._guarded(statement, limits)

    def _guarded(self, statement: str, limits: Limits) -> tuple[Any, ...]:
        """``_fetch_one`` with a client-side deadline: the server's own timeout needs a live server."""
        abandoned = threading.Event()

        def abandon() -> None:
            abandoned.set()
            if self._conn is not None:
                _shut_down_socket(self._conn)

        timer = threading.Timer(limits.statement_timeout_s + ABANDON_GRACE_S, abandon)
        timer.daemon = True
        timer.start()
        try:
            return self._fetch_one(statement, limits)
        except ExecutionFailed as exc:
            if abandoned.is_set():
                self.close()
                raise ExecutionFailed(
                    "database_unresponsive",
                    f"the database did not answer within the statement timeout + {ABANDON_GRACE_S:g} s; "
                    "the connection was abandoned",
                    connection_lost=True,
                ) from exc
            raise
        finally:
            timer.cancel()

    def _settings(self, limits: Limits) -> dict[str, str]:
        """The settings for one transaction; ``temp_file_limit`` only where the role may set it."""
        settings = {
            "statement_timeout": _milliseconds(limits.statement_timeout_s),
            "lock_timeout": _milliseconds(limits.lock_timeout_s),
            "idle_in_transaction_session_timeout": _milliseconds(limits.idle_in_transaction_timeout_s),
            "work_mem": f"{int(limits.work_mem_mb)}MB",
            "search_path": "omop",
        }
        temp = self.temp_files()
        if temp.settable:
            settings[TEMP_FILE_LIMIT] = f"{int(limits.temp_file_limit_mb)}MB"
        elif temp.role_limit_kb is None:
            raise ExecutionFailed(
                "temp_file_limit_unenforceable", "the reader role " + (temp.problem() or "")
            )
        elif temp.role_limit_kb != limits.temp_file_limit_mb * 1024 and (
            self._warned_role_limit != temp.role_limit_kb
        ):
            self._warned_role_limit = temp.role_limit_kb
            log.warning(
                "the reader role may not set temp_file_limit (PostgreSQL < 15, or no GRANT SET ON "
                "PARAMETER): its own setting of %d kB applies instead of the policy's %d MB",
                temp.role_limit_kb,
                limits.temp_file_limit_mb,
            )
        return settings

    def _fetch_one(self, statement: str, limits: Limits) -> tuple[Any, ...]:
        try:
            conn = self.connection()
            settings = self._settings(limits)
            calls = ", ".join("set_config(%s, %s, true)" for _ in settings)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(f"SELECT {calls}", [v for pair in settings.items() for v in pair])
                # binary=True makes psycopg use the extended protocol, where PostgreSQL itself refuses a
                # string holding more than one statement: stacking is stopped below the validator too.
                cur.execute(statement, binary=True)
                row = cur.fetchone()
        except psycopg.Error as exc:
            lost = _connection_lost(exc) or bool(self._conn is not None and self._conn.broken)
            if lost:
                self.close()
            cause, description = classify(exc, limits)
            if lost and cause == "database_error":
                cause, description = "connection_lost", f"the database connection was lost ({description})"
            raise ExecutionFailed(
                cause,
                description,
                sqlstate=exc.sqlstate,
                error_class=type(exc).__name__,
                connection_lost=lost,
            ) from exc
        except ExecutionFailed:
            raise
        except OmopFedError as exc:  # could not connect at all
            raise ExecutionFailed("database_unavailable", f"the database is unavailable: {exc}") from exc
        if row is None:
            raise ExecutionFailed("no_row", "the aggregation returned no row")
        return tuple(row)
