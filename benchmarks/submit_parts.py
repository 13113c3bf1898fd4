"""Where ``hub_broker.submit.submit()`` spends its wall-clock time, part by part.

A profiler distorts this badly: under cProfile the sqlglot pre-check of a trivial query looks like 7 ms,
unprofiled it takes 0.5 ms. So instead, for a few extra queries, each part ``submit()`` calls is wrapped
in a timer (two ``perf_counter()`` calls) and the wrappers are removed afterwards. Only this benchmark
process is touched; the product's files are not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import celery.app.base
import kombu.connection

import hub_broker.submit
from benchmarks.roundtrip import round_trip
from benchmarks.stacks import Stack
from benchmarks.suite import ms
from hub_broker.store import HubStore

SQL = "SELECT person_id FROM person"

# (label, object whose attribute is replaced, attribute): module globals that submit() looks up at call
# time, and methods on the classes of the objects it uses.
PARTS: tuple[tuple[str, Any, str], ...] = (
    ("SQL policy pre-check", hub_broker.submit, "precheck"),
    ("load hub private keys", hub_broker.submit, "load_hub_private"),
    ("load trust registry", hub_broker.submit, "load_trust_registry"),
    ("create a Celery app", hub_broker.submit, "hub_app"),
    ("sign tasks", hub_broker.submit, "sign_task"),
    ("connect to the broker", kombu.connection.Connection, "ensure_connection"),
    ("record the query in the hub store", HubStore, "create_query"),
    ("publish tasks", celery.app.base.Celery, "send_task"),
)


def _timed(original: Callable[..., Any], label: str, totals: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0

    return wrapper


@contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    """Seconds spent in each part while the context is open; originals restored on exit."""
    totals = {label: 0.0 for label, _owner, _attr in PARTS}
    saved = [(owner, attr, getattr(owner, attr)) for _label, owner, attr in PARTS]
    try:
        for label, owner, attr in PARTS:
            setattr(owner, attr, _timed(getattr(owner, attr), label, totals))
        yield totals
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def profile_submit(stack: Stack, trust_ids: list[str], count: int) -> dict[str, Any]:
    """Milliseconds per ``submit()`` call in each part, over ``count`` sequential round trips."""
    submit_s = 0.0
    with timed_parts() as totals:
        for _ in range(count):
            submit_s += round_trip(stack, SQL, trust_ids).sent.submit_s
    parts = {label: round(ms(seconds) / count, 2) for label, seconds in totals.items()}
    submit_ms = ms(submit_s) / count
    return {
        "calls": count,
        "trusts": len(trust_ids),
        "submit_ms": round(submit_ms, 2),
        "parts_ms": {**parts, "everything else": round(submit_ms - sum(parts.values()), 2)},
    }
