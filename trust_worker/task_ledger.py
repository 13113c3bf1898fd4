"""Which query ids this trust has executed, and the sealed answer for each: replay and redelivery defence.

Celery delivers at least once, and a signed task can be replayed by anyone who saw it on the broker. The
trust therefore records a query id *before* running it. A second delivery of a finished id re-sends the
stored sealed answer without touching the database; a second delivery of an id that started but never
finished (the worker died mid-query) is answered with an error rather than run again, so no query id is
ever executed twice.

It is also where answers wait to be delivered: an answer is sealed into the ledger before it is
published, and marked published once the broker took it. An answer the broker could not take (an
outage) is published again (``unpublished``) until it is delivered or its task has expired.

A local SQLite file owned by the worker's OS account: outside PostgreSQL and the reader role's reach.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executed (
    query_id     TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    envelope     TEXT,
    expires_at   TEXT,
    published_at TEXT
)
"""
# Ledgers written before answers were re-published lack the last two columns.
_ADDED_COLUMNS = ("expires_at", "published_at")


@dataclass(frozen=True)
class Claim:
    """``new``: run it. ``done``: re-send ``envelope``. ``interrupted``: started before, never finished."""

    state: Literal["new", "done", "interrupted"]
    envelope: str | None = None


class TaskLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a crash of the worker process, the case this ledger exists for (a task
        # redelivered after the worker died); only an OS crash could lose the last commit. FULL would add an
        # fsync to every task (1.2 ms -> 0.1 ms per claim measured here).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(executed)")}
        for column in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE executed ADD COLUMN {column} TEXT")

    def claim(self, query_id: str, expires_at: datetime | None = None) -> Claim:
        """Atomically record ``query_id`` as started, or report what happened to it before.

        ``expires_at`` is the task's expiry: its answer is re-published until then if it cannot be sent.
        """
        now = datetime.now(UTC).isoformat()
        expires = expires_at.astimezone(UTC).isoformat() if expires_at is not None else None
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT finished_at, envelope FROM executed WHERE query_id = ?", (query_id,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO executed (query_id, started_at, expires_at) VALUES (?, ?, ?)",
                    (query_id, now, expires),
                )
                return Claim("new")
        finished_at, envelope = row
        if finished_at is not None and envelope is not None:
            return Claim("done", envelope)
        return Claim("interrupted")

    def finish(self, query_id: str, envelope: str) -> None:
        self._db.execute(
            "UPDATE executed SET finished_at = ?, envelope = ? WHERE query_id = ?",
            (datetime.now(UTC).isoformat(), envelope, query_id),
        )

    def mark_published(self, query_id: str) -> None:
        now = datetime.now(UTC).isoformat()
        self._db.execute("UPDATE executed SET published_at = ? WHERE query_id = ?", (now, query_id))

    def unpublished(self, now: datetime) -> list[tuple[str, str]]:
        """(query id, sealed answer) the broker has not taken yet, oldest first, for unexpired tasks."""
        rows = self._db.execute(
            "SELECT query_id, envelope FROM executed WHERE envelope IS NOT NULL AND published_at IS NULL "
            "AND expires_at IS NOT NULL AND expires_at > ? ORDER BY finished_at",
            (now.astimezone(UTC).isoformat(),),
        ).fetchall()
        return [(str(q), str(e)) for q, e in rows]

    def prune(self, finished_before: datetime) -> int:
        """Forget queries finished before ``finished_before``; returns how many.

        Safe for the replay defence as long as the retention outlasts a task's lifetime (the policy
        enforces it): a replayed task older than that is refused as expired before the ledger is asked.
        """
        cursor = self._db.execute(
            "DELETE FROM executed WHERE finished_at IS NOT NULL AND finished_at < ?",
            (finished_before.astimezone(UTC).isoformat(),),
        )
        return int(cursor.rowcount)

    def close(self) -> None:
        self._db.close()
