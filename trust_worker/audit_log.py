"""The trust's append-only audit log: every task, its SQL, the decision and exactly what was released.

Information-governance teams read this to see what left the hospital. It is a JSON-lines file owned by the
worker's OS account (outside PostgreSQL, so the reader role cannot see or alter it), opened for append only,
and hash-chained: each entry carries the SHA-256 of the previous line, so a deleted or edited line breaks
the chain and ``omopfed trust audit --verify`` says where.

It is also the only place that says how a query ran: ``execution`` holds the elapsed time and, for a
failure, its real cause (``statement_timeout``, ``temp_file_limit``...), SQLSTATE and exception class.
Answers sent to the hub carry none of that (a researcher could make a query fail or run slowly only for
one person); the log stays on the trust's disk and nothing in the worker sends it anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omop.errors import OmopFedError
from omop.states import AuditDecision

GENESIS = "0" * 64


def sql_hash(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    line: int
    reason: str


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _last_hash(self) -> str:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return GENESIS
        with self.path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            lines = fh.read().splitlines()
        return hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS

    def append(
        self,
        *,
        query_id: str,
        project_id: str | None,
        sql: str | None,
        decision: AuditDecision | str,
        detail: str | None = None,
        released: dict[str, Any] | None = None,
        execution: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one entry; ``decision`` is an ``AuditDecision`` (or its value): rejected / suppressed /
        released / error / refused / resent / budget_granted.

        ``execution`` is how the query ran, for the trust's staff only (see the module docstring).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "query_id": query_id,
            "project_id": project_id,
            "sql": sql,
            "sql_sha256": sql_hash(sql) if sql is not None else None,
            "decision": AuditDecision(decision),
            "detail": detail,
            "released": released,
            "execution": execution,
            **(extra or {}),
            "prev": self._last_hash(),
        }
        line = json.dumps(entry, sort_keys=True, default=str).encode() + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise OmopFedError(f"audit log {self.path} line {number} is not valid JSON") from exc

    def verify(self) -> list[ChainBreak]:
        """Every place where the hash chain does not hold (empty when the log is intact)."""
        breaks: list[ChainBreak] = []
        if not self.path.exists():
            return breaks
        prev = GENESIS
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip(b"\n")
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    breaks.append(ChainBreak(number, "not valid JSON"))
                    prev = hashlib.sha256(line).hexdigest()
                    continue
                if entry.get("prev") != prev:
                    breaks.append(
                        ChainBreak(number, "previous-entry hash does not match (edited or removed)")
                    )
                prev = hashlib.sha256(line).hexdigest()
        return breaks
