"""Submitting a question: pre-check, record, sign one task per trust, publish; then wait for the answers.

The hub runs the same SQL policy as the trusts for fast feedback (a query every trust would reject is
refused here, exit code 2), but the trusts enforce it regardless.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub_broker.celery_app import hub_app
from hub_broker.finalize import finalize_if_due
from hub_broker.queues import check_broker_room
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore, Query, utcnow
from omop.crypto import sign_task
from omop.errors import OmopFedError, UsageError, first_line
from omop.keys import load_hub_private, load_trust_registry
from omop.numeric_spec import NumericRequest, precheck_columns
from omop.protocol import (
    MAX_TASK_LIFETIME,
    PROJECT_ID_PATTERN,
    CohortTask,
    check_trust_id,
    new_query_id,
)
from omop.sql_policy import QueryPolicy, QueryRejected, ValidatedQuery, validate
from omop.states import QueryStatus, TaskKind, TrustStatus
from omop.transport import TASK_NAME, task_message_id, trust_queue


@dataclass(frozen=True)
class Submission:
    query_id: str
    trusts: list[str]
    deadline_at: datetime


def resolve_trusts(requested: Sequence[str] | None, registered: Iterable[str]) -> list[str]:
    """The trusts to ask: the requested ones (each must be registered), or every registered trust."""
    known = sorted(set(registered))
    if requested is None:
        if not known:
            raise UsageError("no trusts are registered at this hub (omopfed keys register-trust ...)")
        return known
    wanted = [check_trust_id(t.strip()) for t in requested if t.strip()]
    if not wanted:
        raise UsageError("the trust list is empty")
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise UsageError(
            f"unknown trust id(s): {', '.join(unknown)} (registered: {', '.join(known) or 'none'})"
        )
    return sorted(set(wanted))


def precheck(
    sql: str, extra_allowed_functions: Sequence[str] = (), numeric: NumericRequest | None = None
) -> ValidatedQuery:
    """The shared SQL policy at the hub: fast feedback for queries every trust would reject."""
    try:
        policy = QueryPolicy(extra_allowed_functions=frozenset(extra_allowed_functions))
    except ValueError as exc:
        raise UsageError(f"invalid OMOPFED_EXTRA_ALLOWED_FUNCTIONS: {exc}") from exc
    try:
        validated = validate(sql, policy)
    except QueryRejected as exc:
        raise UsageError(f"query rejected at the hub ({exc.code}): {exc.message}") from exc
    if numeric is not None:
        precheck_columns(numeric, validated.output_columns)
    return validated


def submit(
    settings: HubSettings,
    store: HubStore,
    *,
    sql: str,
    trusts: Sequence[str] | None = None,
    timeout_s: float | None = None,
    project_id: str = "default",
    kind: TaskKind = TaskKind.COHORT_STATS,
    numeric: NumericRequest | None = None,
    submitted_by: int | None = None,
) -> Submission:
    """Pre-check, record and publish one query; ``numeric`` adds numeric statistics to the cohort's.

    ``submitted_by`` is the hub service's user id of the researcher, recorded with the query.

    ``kind`` is what the hub store records about the query; the tasks carry the request itself.
    """
    if not re.fullmatch(PROJECT_ID_PATTERN, project_id):
        raise UsageError(
            f"--project {project_id!r} is not a project id: 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    precheck(sql, settings.extra_allowed_functions, numeric)
    # the hub store keeps the request (to pool the answers on its grids) in the query's options
    options: dict[str, Any] = numeric.to_options() if numeric is not None else {}
    keys = load_hub_private(settings.hub_keys_dir)
    targets = resolve_trusts(trusts, load_trust_registry(settings.hub_keys_dir))
    timeout = settings.default_timeout_s if timeout_s is None else timeout_s
    if not 0 < timeout <= 86400:
        raise UsageError("--timeout must be between 0 and 86400 seconds")
    app = hub_app(settings)
    query_id = new_query_id()
    now = utcnow()
    deadline = now + timedelta(seconds=timeout)
    # a task lives as long as its query: a trust that comes back after the deadline refuses it as
    # expired (and says so) instead of running a query whose answer nobody will pool
    expires = now + min(timedelta(seconds=timeout + settings.task_expiry_margin_s), MAX_TASK_LIFETIME)
    tasks = [
        sign_task(
            CohortTask(
                query_id=query_id,
                trust_id=t,
                sql=sql,
                project_id=project_id,
                issued_at=now,
                expires_at=expires,
                numeric=numeric,
            ),
            keys.signing,
        )
        for t in targets
    ]
    with app.connection_for_write() as conn:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0.2, timeout=5)
        except Exception as exc:
            raise OmopFedError(f"cannot reach the broker: {first_line(exc)}") from exc
        check_broker_room(conn.default_channel.client, len(tasks), len(sql.encode()))
        store.create_query(
            query_id=query_id,
            project_id=project_id,
            sql=sql,
            trusts=targets,
            threshold=settings.threshold,
            deadline_at=deadline,
            kind=kind,
            options=options,
            submitted_by=submitted_by,
        )
        store.remember_tasks(
            query_id, {t: signed.to_wire() for t, signed in zip(targets, tasks, strict=True)}
        )
        with app.producer_or_acquire() as producer:
            for trust_id, signed in zip(targets, tasks, strict=True):
                try:
                    app.send_task(
                        TASK_NAME,
                        args=[signed.to_wire()],
                        queue=trust_queue(trust_id),
                        producer=producer,
                        task_id=task_message_id(query_id, trust_id),
                    )
                except Exception as exc:
                    store.record_answer(
                        query_id, trust_id, TrustStatus.ERROR, f"could not be queued: {first_line(exc)}", None
                    )
    return Submission(query_id, targets, deadline)


def wait_for(
    store: HubStore,
    query_id: str,
    *,
    on_progress: Callable[[Query], None] | None = None,
    poll_s: float = 0.02,
) -> Query:
    """Poll the store until the query is final (the reducer or the deadline finalises it)."""
    last_seen: tuple[str, ...] = ()
    while True:
        query = finalize_if_due(store, query_id)
        if query is None:
            raise OmopFedError(f"unknown query id {query_id}")
        seen = tuple(a.status for a in query.answers)
        if on_progress is not None and seen != last_seen:
            on_progress(query)
            last_seen = seen
        if query.status != QueryStatus.PENDING:
            return query
        time.sleep(poll_s)
