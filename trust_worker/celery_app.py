"""The trust's Celery worker: consumes only ``trust.<id>``, outbound connection only, one task at a time.

Before it consumes anything it refuses to start when the database role could write or read outside
``omop`` (layer 4), when the policy's threshold is below 10, or when a private key file is readable by
others. The solo pool runs tasks in the main process: one persistent reader connection, flat memory,
and nothing to fork.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Celery

from omop.errors import OmopFedError, UsageError, first_line
from omop.keys import load_pinned_hub, load_trust_private
from omop.protocol import check_trust_id
from omop.transport import (
    HEARTBEAT_TASK_NAME,
    ISOLATED_WORKER_ARGS,
    TASK_NAME,
    base_config,
    results_key,
    touch_when_ready,
    trust_queue,
    trust_queue_name,
    unacked_keys,
)
from trust_worker.audit_log import AuditLog
from trust_worker.database_setup import reader_role_problems
from trust_worker.executor import ReaderExecutor
from trust_worker.liveness import HEARTBEAT_EVERY_S, Liveness
from trust_worker.policy_file import TrustPolicy, load_policy
from trust_worker.settings import TrustSettings
from trust_worker.task_handler import TrustRuntime, republish_pending
from trust_worker.task_ledger import TaskLedger

log = logging.getLogger("omopfed.trust")

#: How often answers the broker could not take are sent again.
REPUBLISH_EVERY_S = 2.0

# Redelivery after visibility_timeout must never overtake a query that is still legitimately running.
VISIBILITY_MARGIN_S = 300.0


def check_reader_role(executor: ReaderExecutor) -> None:
    problems = reader_role_problems(executor.connection())
    if problems:
        raise OmopFedError("refusing to start: the database role is not read-only: " + "; ".join(problems))


def build_runtime(settings: TrustSettings) -> TrustRuntime:
    if not settings.trust_id:
        raise UsageError("no trust id: pass --trust-id or set OMOPFED_TRUST_ID")
    trust_id = check_trust_id(settings.trust_id)
    if not settings.reader_db_url:
        raise UsageError("no database URL: set OMOPFED_READER_DB_URL to the data_analyst_reader connection")
    policy: TrustPolicy = load_policy(settings.policy_file)
    hub = load_pinned_hub(settings.keys_dir)
    signing_key = load_trust_private(settings.keys_dir, trust_id)
    executor = ReaderExecutor(settings.reader_db_url)
    check_reader_role(executor)
    return TrustRuntime(
        trust_id=trust_id,
        hub_verify_key=hub.signing,
        hub_encryption_key=hub.encryption,
        trust_signing_key=signing_key,
        policy=policy,
        executor=executor,
        ledger=TaskLedger(settings.ledger_path()),
        audit=AuditLog(settings.audit_path()),
    )


def build_app(settings: TrustSettings, runtime: TrustRuntime, liveness: Liveness | None = None) -> Celery:
    trust_id = runtime.trust_id
    app = Celery(f"omopfed-trust-{trust_id}", set_as_current=False)
    visibility = runtime.policy.statement_timeout_s + VISIBILITY_MARGIN_S
    app.conf.update(base_config(settings.broker_url, trust_queue_name(trust_id), visibility))
    app.conf.task_queues = [trust_queue(trust_id)]
    app.conf.task_default_queue = trust_queue_name(trust_id)

    answers = redis.Redis.from_url(settings.broker_url, socket_timeout=30, socket_connect_timeout=30)
    key = results_key(trust_id)

    def publish(envelope_wire: dict[str, Any]) -> None:
        # A plain push onto this trust's own results key, the one write its broker user may make there:
        # the reducer reads nothing but sealed answers, so no Celery message wraps them.
        answers.rpush(key, json.dumps(envelope_wire, separators=(",", ":")))

    @app.task(name=TASK_NAME, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def cohort_task(wire: Any) -> str:
        if liveness is None:
            return runtime.handle(wire, publish)
        liveness.task_started()
        try:
            return runtime.handle(wire, publish)
        finally:
            liveness.task_finished(time.monotonic())

    @app.task(name=HEARTBEAT_TASK_NAME, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def heartbeat(_sent_at: float) -> None:
        if liveness is not None:
            liveness.consumed()

    touch_when_ready(settings.ready_file)

    return app


def return_inflight_tasks(client: Any, trust_id: str) -> int:
    """Put back on the queue every task an earlier run of this trust's worker took but never finished.

    One worker consumes a trust's queue, so at its start anything still in flight belongs to a run that
    died (SIGKILL, power loss) and would otherwise wait out the visibility timeout. The ledger then answers
    it (``interrupted``, or the stored answer again): a query is never run twice. Uses only the commands
    the trust's broker user has (a WATCH/MULTI transaction per task, like kombu's own restore).
    """
    queue = trust_queue_name(trust_id)
    keys = unacked_keys(queue)
    returned = 0
    for tag in client.zrange(keys["unacked_index_key"], 0, -1):
        with client.pipeline() as pipe:
            try:
                pipe.watch(keys["unacked_key"])
                raw = pipe.hget(keys["unacked_key"], tag)
                pipe.multi()
                pipe.zrem(keys["unacked_index_key"], tag)
                pipe.hdel(keys["unacked_key"], tag)
                if raw is not None:
                    message = json.loads(raw)[0]
                    message.get("headers", {})["redelivered"] = True
                    pipe.rpush(queue, json.dumps(message))  # the end BRPOP takes from: next in line
                pipe.execute()
                returned += raw is not None
            except redis.WatchError:
                continue  # changed under us: nothing else consumes this queue, so it was being acked
    return returned


def start_republisher(settings: TrustSettings, trust_id: str) -> threading.Event:
    """A background thread re-sending answers the broker could not take; set the event to stop it.

    It has its own ledger connection and broker client (SQLite and redis-py objects stay in one thread).
    """
    stop = threading.Event()

    def loop() -> None:
        ledger = TaskLedger(settings.ledger_path())
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=30, socket_connect_timeout=10)
        key = results_key(trust_id)

        def publish(envelope_wire: dict[str, Any]) -> None:
            client.rpush(key, json.dumps(envelope_wire, separators=(",", ":")))

        try:
            while not stop.wait(REPUBLISH_EVERY_S):
                try:
                    republish_pending(ledger, publish)
                except Exception:  # never let the re-sender die: the next round tries again
                    log.exception("re-sending kept answers failed")
        finally:
            ledger.close()
            client.close()

    threading.Thread(target=loop, name="omopfed-republish", daemon=True).start()
    return stop


def start_heartbeat(app: Celery, trust_id: str, liveness: Liveness) -> threading.Event:
    """Send heartbeats through the worker's own queue; start afresh when they stop coming back."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(HEARTBEAT_EVERY_S):
            now = time.monotonic()
            if liveness.stuck(now):
                log.error("the worker stopped consuming its queue although it runs: starting afresh")
                _start_afresh()
            if liveness.waiting(now):
                continue
            try:
                app.send_task(
                    HEARTBEAT_TASK_NAME, args=[time.time()], queue=trust_queue(trust_id), declare=[]
                )
                liveness.sent(now)
            except Exception as exc:  # the broker is away: kombu reconnects the consumer itself
                log.warning("heartbeat not sent: %s", first_line(exc))

    threading.Thread(target=loop, name="omopfed-heartbeat", daemon=True).start()
    return stop


def _start_afresh() -> None:
    """Replace this process with a new run of the same command (same PID, so supervisors notice nothing)."""
    os.execv(sys.executable, [sys.executable, "-m", "omopfed.cli", *sys.argv[1:]])  # noqa: S606 - our argv


def run_worker(settings: TrustSettings, loglevel: str = "INFO") -> None:
    """Start-up checks, then consume ``trust.<id>`` until stopped (SIGTERM: finish the task, then exit)."""
    runtime = build_runtime(settings)
    liveness = Liveness(settings.ready_file)
    app = build_app(settings, runtime, liveness)
    logging.getLogger("omopfed").setLevel(loglevel)
    broker = redis.Redis.from_url(settings.broker_url, socket_timeout=30, socket_connect_timeout=30)
    try:
        returned = return_inflight_tasks(broker, runtime.trust_id)
    except redis.RedisError as exc:  # the broker is down: kombu's own restore still covers it later
        log.warning("could not check for tasks left in flight: %s", first_line(exc))
        returned = 0
    finally:
        broker.close()
    if returned:
        log.warning("put back %d task(s) an earlier run of this worker left unfinished", returned)
    privacy = runtime.policy.privacy
    if privacy.dp:
        log.info(
            "privacy: dp mode, epsilon %g per query, budget %g per project, at most %d rows per person",
            privacy.epsilon_per_query,
            privacy.budget_per_project,
            privacy.max_rows_per_person,
        )
    else:
        log.warning(
            "privacy: EXACT mode (a governance decision in the trust policy): figures are released without "
            "noise, protected by the threshold and merging rules only; every answer says so"
        )
    cutoff = datetime.now(UTC) - timedelta(days=runtime.policy.ledger_retention_days)
    pruned = runtime.ledger.prune(cutoff)
    if pruned:
        log.info("ledger: forgot %d query id(s) finished before %s", pruned, cutoff.date())
    republisher = start_republisher(settings, runtime.trust_id)
    heartbeat = start_heartbeat(app, runtime.trust_id, liveness)
    argv = [
        "worker",
        "-Q",
        trust_queue_name(runtime.trust_id),
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--hostname",
        f"trust-{runtime.trust_id}@%h",
        "--loglevel",
        loglevel,
        *ISOLATED_WORKER_ARGS,
    ]
    try:
        app.worker_main(argv)
    finally:
        heartbeat.set()
        republisher.set()
        runtime.executor.close()
        runtime.ledger.close()
