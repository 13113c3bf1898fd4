"""Database URLs as users type them, turned into what psycopg and SQLAlchemy want.

Every ``--db-url`` accepts plain libpq URLs (``postgresql://user:pw@host:port/db``, unix sockets as
``?host=/socket/dir&port=N``) and SQLAlchemy-style ``postgresql+psycopg://`` alike.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from omop.errors import UsageError

_SCHEME = re.compile(r"^(postgres|postgresql)(\+[a-z0-9_]+)?$")


def urlunsplit(parts: tuple[str, str, str, str, str] | SplitResult) -> str:
    """Like ``urllib.parse.urlunsplit`` but keeps ``//`` for an empty host (unix-socket URLs)."""
    scheme, netloc, path, query, fragment = parts
    out = f"{scheme}://{netloc}{path}"
    if query:
        out += f"?{query}"
    if fragment:
        out += f"#{fragment}"
    return out


def libpq_url(url: str) -> str:
    """Return ``url`` as a libpq URL, or raise ``UsageError`` saying what is wrong with it."""
    url = (url or "").strip()
    if not url:
        raise UsageError("no database URL given (use --db-url or the OMOPFED_DB_URL variable)")
    parts = urlsplit(url)
    if not _SCHEME.match(parts.scheme or ""):
        raise UsageError(
            f"not a PostgreSQL URL: {redact(url)!r} (expected postgresql://user:password@host:port/dbname)"
        )
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL with the psycopg 3 driver; non-PostgreSQL URLs pass through."""
    scheme = urlsplit(url).scheme
    if _SCHEME.match(scheme or ""):
        return "postgresql+psycopg" + libpq_url(url)[len("postgresql") :]
    return url


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(libpq_url(url)).path.lstrip("/") or "postgres"


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_user(url: str, user: str, password: str | None) -> str:
    """The same server and database, other credentials."""
    from urllib.parse import quote

    parts = urlsplit(libpq_url(url))
    host = parts.netloc.rsplit("@", 1)[-1]
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))
