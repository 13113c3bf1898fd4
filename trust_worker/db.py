"""Opening PostgreSQL connections with errors a user can read."""

from __future__ import annotations

from typing import Any

import psycopg

from omop.dburl import libpq_url, redact
from omop.errors import DatabaseUnavailable as DatabaseUnavailable
from omop.errors import first_line


def connect(url: str, *, connect_timeout: int = 10, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect`` that turns connection failures into a one-line ``DatabaseUnavailable``."""
    target = libpq_url(url)
    try:
        return psycopg.connect(target, connect_timeout=connect_timeout, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {redact(target)}: {_libpq_reason(exc)}") from exc


def _libpq_reason(exc: BaseException) -> str:
    # libpq puts the useful part after "FATAL:" on the first line; keep it short and free of internals
    msg = first_line(exc)
    if "FATAL:" in msg:
        msg = msg.split("FATAL:", 1)[1].strip()
    elif "failed:" in msg:
        msg = msg.rsplit("failed:", 1)[1].strip() or msg
    return msg
