"""Helpers for end-to-end tests: run the real ``omopfed`` command, talk to a running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub_broker.celery_app import hub_app
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.crypto import sign_task
from omop.keys import load_hub_private
from omop.protocol import CohortTask, new_query_id
from omop.settings import load
from omop.transport import TASK_NAME, trust_queue
from omopfed.stack import StackState


def omopfed(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the installed command in a clean environment (no developer OMOPFED_* variables leak in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OMOPFED_")}
    return subprocess.run(
        [sys.executable, "-m", "omopfed.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
        check=False,
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def submit_json(stack: StackState, *args: str) -> tuple[int, dict[str, Any]]:
    proc = omopfed("hub", "submit", "--env-file", str(Path(stack.dir) / "stack.env"), "--json", *args)
    no_traceback(proc)
    assert proc.stdout.count("\n") == 1, (
        f"stdout must hold exactly one JSON object: {proc.stdout!r} {proc.stderr}"
    )
    return proc.returncode, json.loads(proc.stdout)


def hub_settings(stack: StackState) -> HubSettings:
    return load(
        HubSettings,
        broker_url=stack.hub_redis_url,
        hub_store_url=stack.hub_store_url,
        hub_keys_dir=stack.hub_keys_dir,
    )


def publish_raw(stack: StackState, trust_id: str, wire: dict[str, Any]) -> None:
    """Put a task message on a trust's queue, bypassing ``submit`` (for forged/replayed/expired tasks)."""
    app = hub_app(hub_settings(stack))
    app.send_task(TASK_NAME, args=[wire], queue=trust_queue(trust_id))


def signed_task(
    stack: StackState,
    trust_id: str,
    sql: str,
    *,
    query_id: str | None = None,
    issued: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    key: Any = None,
) -> tuple[str, dict[str, Any]]:
    qid = query_id or new_query_id()
    issued = issued or datetime.now(UTC)
    task = CohortTask(
        query_id=qid,
        trust_id=trust_id,
        kind="cohort_stats",
        sql=sql,
        project_id="tests",
        statistics=["person_count"],
        issued_at=issued,
        expires_at=issued + lifetime,
    )
    signing = key or load_hub_private(Path(stack.hub_keys_dir or "")).signing
    return qid, sign_task(task, signing).to_wire()


def register_query(stack: StackState, query_id: str, trusts: list[str], timeout_s: float = 20) -> HubStore:
    store = HubStore(stack.hub_store_url or "")
    store.create_query(
        query_id=query_id,
        project_id="tests",
        sql="(published by a test)",
        trusts=trusts,
        threshold=10,
        deadline_at=datetime.now(UTC) + timedelta(seconds=timeout_s),
    )
    return store


def audit_entries(stack: StackState, trust_id: str) -> list[dict[str, Any]]:
    path = Path(stack.trusts[trust_id].dir) / "state" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def eventually(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)
