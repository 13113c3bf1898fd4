"""Create the ``omop`` schema and the read-only role a trust runs queries as (defence layer 4).

``init_db`` is what ``omopfed trust init-db`` runs: in one transaction it refuses a database whose schema
``omop`` holds anything that is not ours, creates the CDM tables and indexes, and (re)asserts two roles:

* ``omop_reader_base`` (NOLOGIN) holds the privileges: CONNECT on this database, USAGE on ``omop``, SELECT
  on every ``omop`` table now and in future (default privileges). Nothing else.
* ``data_analyst_reader`` (LOGIN) is a member of it and carries the session settings that make every
  transaction read-only, bounded in time and temporary-file space (``temp_file_limit``) and pinned to
  ``search_path = omop``, plus a connection limit.

``temp_file_limit`` is a superuser-only setting: only a superuser may put it on the role, and the reader
may set it per transaction (as the worker does, from the trust policy) only when granted ``SET ON
PARAMETER temp_file_limit``, which exists from PostgreSQL 15. init-db does both when it can; when it
cannot (a non-superuser owner, an older server) it says so and what a superuser should run, and the
worker refuses to start while the reader's temporary files are unbounded.

Roles are cluster-wide, so the privileges live on the base role per database and the login role is only
altered, never dropped: running init-db on a second database of the same cluster leaves the first working.
PUBLIC gets CONNECT and TEMPORARY on every new database and (before PostgreSQL 15) CREATE on schema
``public``; those are revoked, otherwise the reader would inherit them.

``reader_role_problems`` is the other half: connected as whatever role the worker was given, it lists every
reason that role could change data, so the worker can refuse to start rather than trust a configuration.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from omop import schema
from omop.dburl import database_name, with_user
from omop.errors import OmopFedError, UsageError, first_line
from trust_worker.db import connect
from trust_worker.executor import temp_file_control
from trust_worker.schema_checks import ForeignSchemaError, conflict_message, schema_conflicts

log = logging.getLogger("omopfed.trust")

BASE_ROLE = "omop_reader_base"
READER_ROLE = "data_analyst_reader"
# Only ever used with allow_dev_password=True (the local demo stack); production refuses to invent one.
DEV_READER_PASSWORD = "omopfed-dev-reader"  # noqa: S105 - dev stack only, never a default
MIN_PASSWORD_LENGTH = 8
DEFAULT_TEMP_FILE_LIMIT_MB = 1024
MAX_TEMP_FILE_LIMIT_MB = 1024 * 1024
# Built-in roles that would let a member read or write around the grants above.
_DANGEROUS_BUILTIN_ROLES = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
)


def reader_url(db_url: str, password: str | None) -> str:
    """The URL of the same database as ``data_analyst_reader``."""
    return with_user(db_url, READER_ROLE, password)


# --------------------------------------------------------------------------------------------------------
# init-db
# --------------------------------------------------------------------------------------------------------


def check_reader_password(password: str | None, *, role_exists: bool, allow_dev_password: bool) -> str | None:
    """The password to set (None: keep the existing one), or a ``UsageError`` saying what is wrong.

    A new role needs a password; the built-in development password is used only when explicitly allowed.
    """
    if password is not None and password != "":
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UsageError(f"reader password too short: use at least {MIN_PASSWORD_LENGTH} characters")
        return password
    if password == "":
        raise UsageError("reader password is empty")
    if role_exists:
        return None
    if allow_dev_password:
        return DEV_READER_PASSWORD
    raise UsageError(
        f"role {READER_ROLE} does not exist yet and no password was given: "
        "use --reader-password or the OMOPFED_READER_PASSWORD variable"
    )


def init_db(
    admin_url: str,
    reader_password: str | None,
    *,
    statement_timeout_ms: int = 30000,
    connection_limit: int = 20,
    allow_dev_password: bool = False,
    temp_file_limit_mb: int = DEFAULT_TEMP_FILE_LIMIT_MB,
) -> list[str]:
    """Create schema ``omop``, its tables and the reader roles in the database at ``admin_url``.

    Idempotent; all or nothing (one transaction). ``admin_url`` must be a superuser or a role that may
    create roles and owns the database. ``reader_password`` None keeps an existing reader's password.

    Returns (and logs as warnings) what could not be done without a superuser: the reader's
    ``temp_file_limit`` and, on PostgreSQL 15+, its right to set that limit per query. Empty when all
    was done.
    """
    if statement_timeout_ms <= 0:
        raise UsageError("statement timeout must be a positive number of milliseconds")
    if connection_limit <= 0:
        raise UsageError("connection limit must be positive")
    if not 1 <= temp_file_limit_mb <= MAX_TEMP_FILE_LIMIT_MB:
        raise UsageError(f"temp file limit must be between 1 and {MAX_TEMP_FILE_LIMIT_MB} MB")
    with connect(admin_url) as conn:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '15s'")
                _serialize_role_changes(conn)
                problems = schema_conflicts(conn)
                if problems:
                    raise ForeignSchemaError(conflict_message(problems))
                conn.execute(schema.DDL)
                _ensure_roles(
                    conn, reader_password, statement_timeout_ms, connection_limit, allow_dev_password
                )
                notes = _bound_temp_files(conn, temp_file_limit_mb)
                _grant(conn, database_name(admin_url))
        except psycopg.Error as exc:
            raise OmopFedError(f"init-db failed, nothing was changed: {first_line(exc)}") from exc
    for note in notes:
        log.warning("%s", note)
    return notes


def _bound_temp_files(conn: psycopg.Connection[Any], temp_file_limit_mb: int) -> list[str]:
    """Give the reader a ``temp_file_limit`` and (PostgreSQL 15+) the right to set it per transaction.

    Both need a superuser (or, for the role setting, a role already granted SET on the parameter). Each
    is tried in its own savepoint so that an owner without that right still gets everything else; what
    was refused comes back as a note naming the statements a superuser should run.
    """
    reader = sql.Identifier(READER_ROLE)
    value = f"{temp_file_limit_mb}MB"
    refused: list[str] = []
    statements: list[tuple[str, sql.Composed]] = [
        (
            f"ALTER ROLE {READER_ROLE} SET temp_file_limit = '{value}'",
            sql.SQL("ALTER ROLE {} SET temp_file_limit = {}").format(reader, sql.Literal(value)),
        )
    ]
    if conn.info.server_version >= 150000:
        statements.append(
            (
                f"GRANT SET ON PARAMETER temp_file_limit TO {READER_ROLE}",
                sql.SQL("GRANT SET ON PARAMETER temp_file_limit TO {}").format(reader),
            )
        )
    for text, statement in statements:
        try:
            with conn.transaction():
                conn.execute(statement)
        except pgerrors.InsufficientPrivilege:
            refused.append(text)
    notes: list[str] = []
    if refused:
        notes.append(
            "temp_file_limit is a superuser-only setting and this role may not grant it: have a superuser "
            "run " + "; ".join(refused) + " (the worker refuses to start while the reader's temporary "
            "files are unbounded)"
        )
    if conn.info.server_version < 150000:
        notes.append(
            f"PostgreSQL {conn.info.server_version // 10000} has no GRANT SET ON PARAMETER: the reader's "
            f"own temp_file_limit ({value}) applies to every query, not the trust policy's "
            "temp_file_limit_mb (PostgreSQL 15 or newer applies the policy's value per query)"
        )
    return notes


def _serialize_role_changes(conn: psycopg.Connection[Any]) -> None:
    """Queue behind any other init-db on this cluster (any database) until this transaction ends.

    Roles live in shared catalogs: two init-db runs altering the same role at once make one of them fail
    with "tuple concurrently updated". Advisory locks are per database, but a lock on the shared catalog
    pg_authid is cluster-wide; SHARE ROW EXCLUSIVE conflicts with itself and with role changes, not with
    logins (which only read it). Only a superuser may take it; other admins run unserialized.
    """
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row is not None and row[0]:
        conn.execute("LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE")


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _ensure_roles(
    conn: psycopg.Connection[Any],
    password: str | None,
    statement_timeout_ms: int,
    connection_limit: int,
    allow_dev_password: bool,
) -> None:
    base, reader = sql.Identifier(BASE_ROLE), sql.Identifier(READER_ROLE)
    locked_down = sql.SQL("NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
    if not _role_exists(conn, BASE_ROLE):
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT {}").format(base, locked_down))
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN NOINHERIT {}").format(base, locked_down))

    exists = _role_exists(conn, READER_ROLE)
    new_password = check_reader_password(password, role_exists=exists, allow_dev_password=allow_dev_password)
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(reader))
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN INHERIT {} CONNECTION LIMIT {}").format(
            reader, locked_down, sql.Literal(connection_limit)
        )
    )
    if new_password is not None:
        # Hash client-side so the clear-text password never appears in server logs or pg_stat_activity.
        verifier = conn.pgconn.encrypt_password(new_password.encode(), READER_ROLE.encode(), None)
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(reader, sql.Literal(verifier.decode())))
    settings = {
        "default_transaction_read_only": "on",
        "statement_timeout": str(statement_timeout_ms),
        "search_path": schema.SCHEMA,
        "idle_in_transaction_session_timeout": str(max(statement_timeout_ms * 2, 60000)),
    }
    for name, value in settings.items():
        conn.execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(reader, sql.Identifier(name), sql.Literal(value))
        )

    # Membership: inherit the base role's SELECT grants; on PostgreSQL 16+ also forbid SET ROLE to it.
    if conn.info.server_version >= 160000:
        conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET FALSE").format(base, reader))
    else:
        conn.execute(sql.SQL("GRANT {} TO {}").format(base, reader))
    for role in (BASE_ROLE, READER_ROLE):
        for builtin in _existing_memberships(conn, role, _DANGEROUS_BUILTIN_ROLES):
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(builtin), sql.Identifier(role)))


def _existing_memberships(conn: psycopg.Connection[Any], member: str, roles: tuple[str, ...]) -> list[str]:
    rows = conn.execute(
        """
        SELECT r.rolname FROM pg_auth_members m
        JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = %s AND r.rolname = ANY(%s)
        """,
        (member, list(roles)),
    ).fetchall()
    return [r[0] for r in rows]


def _grant(conn: psycopg.Connection[Any], dbname: str) -> None:
    db = sql.Identifier(dbname)
    omop = sql.Identifier(schema.SCHEMA)
    base, reader = sql.Identifier(BASE_ROLE), sql.Identifier(READER_ROLE)
    both = sql.SQL("{}, {}").format(base, reader)
    statements: list[sql.SQL | sql.Composed] = [
        # The database: PUBLIC has CONNECT and TEMPORARY by default; only the base role may connect.
        sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE CREATE, TEMPORARY ON DATABASE {} FROM {}").format(db, both),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, base),
        # Schema omop: usage and SELECT only, now and for tables created later by this admin role.
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(omop),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(omop, both),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(omop, base),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM PUBLIC").format(omop),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(omop, both),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(omop, base),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM PUBLIC").format(omop),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(omop, both),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(omop, base),
        # Make sure no per-database override of the role settings exists here.
        sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(reader, db),
    ]
    if _schema_exists(conn, "public"):
        # PostgreSQL < 15 lets PUBLIC create objects in schema public.
        statements += [
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
            sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(both),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(both),
        ]
    for stmt in statements:
        conn.execute(stmt)


def _schema_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone() is not None


# --------------------------------------------------------------------------------------------------------
# The worker's start-up check
# --------------------------------------------------------------------------------------------------------

_ROLE_ATTRIBUTE_PROBLEMS = (
    ("rolsuper", "is a superuser"),
    ("rolbypassrls", "bypasses row-level security (BYPASSRLS)"),
    ("rolcreaterole", "may create roles (CREATEROLE)"),
    ("rolcreatedb", "may create databases (CREATEDB)"),
    ("rolreplication", "is a replication role"),
)


def reader_role_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """Reasons the connected role is NOT safe to run researchers' queries as; empty when it is.

    Asks PostgreSQL's own privilege functions about the current role, so grants reaching the role through
    PUBLIC or role membership count too. Runs read-only queries only. Unbounded temporary files (no
    ``temp_file_limit`` on the role and no right to set one) count too: a query could fill the disk.
    """
    role = conn.execute("SELECT current_user").fetchone()
    assert role is not None
    me: str = role[0]
    problems: list[str] = []

    attrs = conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    if attrs is not None:
        for (_, text), flag in zip(_ROLE_ATTRIBUTE_PROBLEMS, attrs, strict=True):
            if flag:
                problems.append(f"role {me} {text}")

    for (name,) in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolsuper AND rolname <> current_user "
        "AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY rolname"
    ).fetchall():
        problems.append(f"role {me} is a member of superuser role {name}")

    for (name,) in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER') "
        "ORDER BY rolname",
        (list(_DANGEROUS_BUILTIN_ROLES),),
    ).fetchall():
        problems.append(f"role {me} is a member of {name}")

    temp_problem = temp_file_control(conn).problem()
    if temp_problem is not None:
        problems.append(f"role {me} {temp_problem}")

    db = conn.execute(
        "SELECT has_database_privilege(current_database(), 'CREATE'), "
        "has_database_privilege(current_database(), 'TEMPORARY'), current_database()"
    ).fetchone()
    assert db is not None
    if db[0]:
        problems.append(f"role {me} may CREATE schemas in database {db[2]}")
    if db[1]:
        problems.append(f"role {me} may create TEMPORARY tables in database {db[2]}")

    for (nsp,) in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(oid, 'CREATE') "
        "AND nspname NOT LIKE 'pg\\_temp\\_%%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%%' ORDER BY nspname"
    ).fetchall():
        problems.append(f"role {me} may CREATE objects in schema {nsp}")

    writable = conn.execute(
        """
        SELECT n.nspname, c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%%'
          AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
        ORDER BY 1, 2
        """
    ).fetchall()
    if writable:
        shown = ", ".join(f"{s}.{t}" for s, t in writable[:5])
        more = f" and {len(writable) - 5} more" if len(writable) > 5 else ""
        problems.append(f"role {me} may INSERT/UPDATE/DELETE/TRUNCATE {shown}{more}")
    return problems
