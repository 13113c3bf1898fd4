"""Local federations for the suites, shared between suites that need the same kind of stack.

Starting a stack dominates the benchmark's own run time (PostgreSQL per trust, seeding, one Celery worker
per trust), so the pool keeps one stack alive and hands it to every unit of work that fits: same
population per trust and at least as many trusts. Units address a subset of the trusts when the stack has
more; the others stay idle, blocked in the broker's ``BRPOP``. At most one stack is alive at a time,
which bounds memory (a 32-trust stack alone is 32 PostgreSQL servers and 32 worker processes).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.settings import load
from omop.states import PrivacyMode
from omopfed import stack as stack_mod
from omopfed.stack import StackState

Log = Callable[[str], None]


@dataclass
class Stack:
    """A running federation plus what the hub side needs to talk to it from this process."""

    state: StackState
    persons: int
    up_seconds: float
    settings: HubSettings
    store: HubStore

    @property
    def env_file(self) -> Path:
        return Path(self.state.dir) / stack_mod.ENV_FILE

    def trust_ids(self, count: int) -> list[str]:
        ids = list(self.state.trusts)
        if count > len(ids):
            raise ValueError(f"the stack has {len(ids)} trusts, {count} requested")
        return ids[:count]

    def state_dir(self, trust_id: str) -> Path:
        return Path(self.state.trusts[trust_id].dir) / "state"


@dataclass
class StackPool:
    root: Path
    log: Log
    current: Stack | None = None
    started: list[dict[str, float | int]] = field(default_factory=list)
    #: speed benchmarks compare exact figures with plain SQL; the dp benchmark asks for "dp"
    privacy: str = PrivacyMode.EXACT

    def get(self, trusts: int, persons: int) -> Stack:
        """A stack with at least ``trusts`` trusts of ``persons`` persons each (reused when one fits)."""
        cur = self.current
        if cur is not None and cur.persons == persons and len(cur.state.trusts) >= trusts:
            return cur
        self.close()
        directory = self.root / f"stack-{len(self.started) + 1}"
        self.log(f"starting a stack: {trusts} trust(s) x {persons:,} persons")
        t0 = time.perf_counter()
        state = stack_mod.up(directory, trusts=trusts, persons=persons, privacy=self.privacy)
        seconds = time.perf_counter() - t0
        self.started.append({"trusts": trusts, "persons": persons, "up_seconds": round(seconds, 1)})
        settings = load(
            HubSettings,
            broker_url=state.hub_redis_url,
            hub_store_url=state.hub_store_url,
            hub_keys_dir=state.hub_keys_dir,
        )
        try:
            store = HubStore(settings.hub_store_url)
        except BaseException:
            stack_mod.down(state)
            raise
        self.current = Stack(state, persons, seconds, settings, store)
        self.log(f"stack ready in {seconds:.1f} s")
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.store.engine.dispose()
            stack_mod.down(self.current.state)
            self.current = None


def ledger_times(state_dir: Path, query_ids: Sequence[str]) -> dict[str, tuple[datetime, datetime | None]]:
    """When the trust's worker claimed (started) and finished each query, from its executed-query ledger.

    The ledger row is written right after the task's signature is verified and before the SQL runs, so
    ``started_at`` is the moment the trust worker starts the task. Read-only, so the worker is undisturbed.
    """
    path = state_dir / "executed.sqlite"
    wanted = set(query_ids)
    found: dict[str, tuple[datetime, datetime | None]] = {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        for qid, started, finished in db.execute("SELECT query_id, started_at, finished_at FROM executed"):
            if qid in wanted:
                found[qid] = (_parse(started), _parse(finished) if finished else None)
    finally:
        db.close()
    return found


def ledger_count(state_dir: Path, query_ids: Sequence[str]) -> int:
    """How many ledger rows name one of ``query_ids`` (the primary key makes each at most once)."""
    return len(ledger_times(state_dir, query_ids))


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def audit_elapsed_ms(state_dir: Path, query_id: str) -> float | None:
    """How long the trust worked on ``query_id``, from its own audit log (answers carry no timing)."""
    path = state_dir / "audit.jsonl"
    if not path.exists():
        return None
    with path.open() as fh:
        for line in fh:
            entry = json.loads(line)
            if entry.get("query_id") == query_id and isinstance(entry.get("execution"), dict):
                value = entry["execution"].get("elapsed_ms")
                return float(value) if value is not None else None
    return None
