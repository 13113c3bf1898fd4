"""The hub's reducer: reads each trust's results key, verifies, decrypts, stores each answer once.

It understands nothing but answers. Every message on ``hub.results.<id>`` must be a sealed answer signed
by trust ``<id>`` itself (the owner of that key); anything else (too large, not JSON, not an envelope, a
bad signature, an answer claiming another trust, a query that trust was never asked) is refused: counted
in the store with its reason and the key's trust, logged once per trust and reason, and dropped. It runs
no Celery task, built-in or otherwise, so a message cannot make it publish, retry or sleep. Broker errors
(a key of the wrong type, the broker restarting) are survived, never fatal.

:class:`Reducer` is the pure part (one message in, one decision out); :func:`run_reducer` is the loop.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_broker.celery_app import hub_app
from hub_broker.finalize import finalize_due, finalize_if_due
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.crypto import ResultRejected, open_result
from omop.errors import first_line
from omop.keys import load_hub_private, load_trust_registry
from omop.protocol import ProtocolError, ResultEnvelope
from omop.states import Recorded, RefusalCode
from omop.transport import (
    MAX_RESULT_BYTES,
    TASK_NAME,
    processing_key,
    results_key,
    task_message_id,
    trust_queue,
    trust_queue_name,
    unacked_keys,
)

log = logging.getLogger("omopfed.hub")

#: The broker client's socket timeout: no command of the loop blocks, so this only bounds a dead broker.
SOCKET_TIMEOUT_S = 10.0
#: How often the loop re-reads the registered trusts (new or removed trusts, replaced keys).
REGISTRY_EVERY_S = 1.0
#: How often a consuming reducer refreshes its ready file (the compose healthcheck reads its age).
ALIVE_EVERY_S = 1.0
#: How often the reducer looks for tasks the broker holds nowhere (``LostTasks``).
LOST_TASKS_EVERY_S = 5.0
#: A refusal with the same trust and reason is logged again only after this many seconds.
LOG_EVERY_S = 60.0
#: How often the loop finalises queries whose deadline has passed, busy or not.
DEADLINES_EVERY_S = 1.0


@dataclass
class Reducer:
    store: HubStore
    hub_encryption_key: X25519PrivateKey
    keys_dir: Path
    registry: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _logged: dict[tuple[str, str], float] = field(default_factory=dict)

    def reload_registry(self) -> None:
        self.registry = dict(load_trust_registry(self.keys_dir))

    def handle(self, owner: str, raw: bytes) -> str:
        """Process one message read from trust ``owner``'s results key.

        Returns ``stored``, ``duplicate`` or a refusal code.
        """
        if len(raw) > MAX_RESULT_BYTES:
            return self._refuse(
                owner, RefusalCode.TOO_LARGE, f"{len(raw)} bytes; an answer is at most {MAX_RESULT_BYTES}"
            )
        try:
            wire = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self._refuse(owner, RefusalCode.MALFORMED, "not a JSON document")
        try:
            envelope = ResultEnvelope.from_wire(wire)
        except ProtocolError as exc:
            return self._refuse(owner, RefusalCode.MALFORMED, str(exc))
        if envelope.trust_id != owner:
            return self._refuse(
                owner,
                RefusalCode.WRONG_OWNER,
                f"an answer for trust {envelope.trust_id!r} on {owner!r}'s results key",
            )
        if owner not in self.registry:
            self.reload_registry()  # a trust registered (or replaced) after the reducer started
        try:
            result = open_result(
                envelope, trust_verify_keys=self.registry, hub_x25519_private=self.hub_encryption_key
            )
        except ResultRejected as exc:
            return self._refuse(owner, exc.code, str(exc), envelope.query_id)
        recorded = self.store.record_answer(
            result.query_id, result.trust_id, result.status, result.detail, result.model_dump(mode="json")
        )
        if recorded is Recorded.UNKNOWN:
            return self._refuse(
                owner, RefusalCode.UNKNOWN_QUERY, "no such query was sent to this trust", result.query_id
            )
        stored = recorded is Recorded.STORED
        if stored:
            finalize_if_due(self.store, result.query_id)
        log.info(
            "query %s trust %s: %s%s",
            result.query_id,
            result.trust_id,
            result.status,
            "" if stored else " (duplicate ignored)",
        )
        return Recorded.STORED if stored else Recorded.DUPLICATE

    def _refuse(self, owner: str, code: str, detail: str, query_id: str | None = None) -> str:
        now = time.monotonic()
        last = self._logged.get((owner, code))
        if last is None or now - last >= LOG_EVERY_S:  # a flood is logged once a minute, counted always
            log.warning("refused a message on %s (%s): %s", results_key(owner), code, detail)
            self._logged[(owner, code)] = now
        self.store.refuse(code, detail, query_id, owner)
        return code


@dataclass
class ResultsReader:
    """Reads across every registered trust's results key without losing a message to a crash.

    Each message is moved (``LMOVE``, atomic) from ``hub.results.<id>`` to the hub's own
    ``hub.processing.<id>`` before it is handled and removed from there after: a reducer killed while
    handling finds it again at its next start. One pipelined round trip moves at most one message from
    every key; when nothing came, the loop waits a few milliseconds (up to ``idle_max_s``) before it
    looks again. Broker errors propagate to the loop, which reconnects; a key of the wrong type is
    skipped, never fatal.
    """

    client: Any
    trusts: Callable[[], Sequence[str]]
    idle_max_s: float = 0.025
    broken: set[str] = field(default_factory=set)
    _pending: list[tuple[str, bytes]] = field(default_factory=list)
    _idle_s: float = 0.0

    def recover(self) -> int:
        """Queue again what an earlier run moved to processing but never finished; returns how many."""
        for trust in self.trusts():
            for raw in self.client.lrange(processing_key(trust), 0, -1):
                self._pending.append((trust, bytes(raw)))
        return len(self._pending)

    def next(self) -> tuple[str, bytes] | None:
        """One (trust id, message), or None after a short wait when nothing arrived."""
        if self._pending:
            return self._pending.pop(0)
        trusts = [t for t in self.trusts() if t not in self.broken]
        pipe = self.client.pipeline(transaction=False)
        for trust in trusts:
            pipe.lmove(results_key(trust), processing_key(trust), "LEFT", "RIGHT")
        for trust, moved in zip(trusts, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(moved, redis.ResponseError):
                if "WRONGTYPE" not in str(moved):
                    raise moved
                self._quarantine(trust)
            elif isinstance(moved, redis.RedisError):
                raise moved
            elif moved is not None:
                self._pending.append((trust, bytes(moved)))
        if self._pending:
            self._idle_s = 0.0
            return self._pending.pop(0)
        self._idle_s = min(self.idle_max_s, self._idle_s + 0.005)
        time.sleep(self._idle_s)
        return None

    def done(self, trust: str, raw: bytes) -> None:
        """The message is stored or refused: take it off the processing list."""
        self.client.lrem(processing_key(trust), 1, raw)

    def _quarantine(self, trust: str) -> None:
        """A key that is not a list (only the hub could have made it so) is skipped, loudly, not fatal."""
        kind = self.client.type(results_key(trust))
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        self.broken.add(trust)
        log.error(
            "results key %s holds a %s, not a list: skipped until the reducer restarts",
            results_key(trust),
            kind,
        )


@dataclass
class LostTasks:
    """Finds signed tasks the broker holds nowhere although their trust has not answered, and re-sends them.

    A task is somewhere while its trust has not answered: waiting in ``trust.<id>``, in flight in the
    trust's unacked records, or answered on ``hub.results.<id>`` / ``hub.processing.<id>``. kombu takes a
    task off the queue (BRPOP) and records it as in flight a moment later; a worker killed in between loses
    it, and an answer acknowledged by a broker that then crashed is lost too. A task missing on two checks
    in a row is published again (the same signed task, at most ``max_resends`` times); the trust's ledger
    runs it at most once, and re-sends its stored answer if it already had one.
    """

    client: Any
    publish: Callable[[str, str, dict[str, Any]], None]
    max_resends: int = 3
    backlog_limit: int = 1000
    _suspects: set[tuple[str, str]] = field(default_factory=set)

    def check(self, store: HubStore) -> int:
        """One round; returns how many tasks were re-sent."""
        by_trust: dict[str, list[Any]] = {}
        for task in store.unanswered_tasks():
            by_trust.setdefault(task.trust_id, []).append(task)
        missing: set[tuple[str, str]] = set()
        for trust_id, tasks in by_trust.items():
            seen = self._where_things_are(trust_id)
            if seen is None:
                continue  # a long backlog: its tasks are waiting there
            for task in tasks:
                marker = task_message_id(task.query_id, trust_id).encode()
                if marker not in seen and task.query_id.encode() not in seen:
                    missing.add((task.query_id, trust_id))
        resent = 0
        for query_id, trust_id in missing & self._suspects:
            task = next(t for t in by_trust[trust_id] if t.query_id == query_id)
            if task.resent >= self.max_resends:
                continue
            log.warning("task of query %s for trust %s is nowhere: publishing it again", query_id, trust_id)
            self.publish(query_id, trust_id, task.wire)
            store.count_resend(query_id, trust_id)
            resent += 1
        self._suspects = missing
        return resent

    def _where_things_are(self, trust_id: str) -> bytes | None:
        queue = trust_queue_name(trust_id)
        if self.client.llen(queue) > self.backlog_limit:
            return None
        pipe = self.client.pipeline(transaction=False)
        pipe.lrange(queue, 0, -1)
        pipe.hvals(unacked_keys(queue)["unacked_key"])
        pipe.lrange(results_key(trust_id), 0, -1)
        pipe.lrange(processing_key(trust_id), 0, -1)
        parts: list[bytes] = []
        for found in pipe.execute():
            parts.extend(bytes(item) for item in found)
        return b"\n".join(parts)


def run_reducer(
    settings: HubSettings, loglevel: str = "INFO", stop: Callable[[], bool] | None = None
) -> None:
    """Consume every trust's results key until SIGTERM/SIGINT (or ``stop()``), storing each answer once."""
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("omopfed").setLevel(loglevel)
    keys = load_hub_private(settings.hub_keys_dir)
    reducer = Reducer(HubStore(settings.hub_store_url), keys.encryption, settings.hub_keys_dir)
    reducer.reload_registry()
    stopping = {"now": False}

    def _stop(*_: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    client = redis.Redis.from_url(
        settings.broker_url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=10,
        health_check_interval=30,
    )
    reader = ResultsReader(client, lambda: sorted(reducer.registry))
    recovered = False
    ready = False
    backoff = 0.5
    deadlines_at = 0.0
    registry_at = 0.0
    alive_at = 0.0
    lost_at = time.monotonic() + LOST_TASKS_EVERY_S
    app = hub_app(settings)

    def republish(query_id: str, trust_id: str, wire: dict[str, Any]) -> None:
        app.send_task(
            TASK_NAME, args=[wire], queue=trust_queue(trust_id), task_id=task_message_id(query_id, trust_id)
        )

    lost_tasks = LostTasks(client, republish)
    while not stopping["now"] and not (stop is not None and stop()):
        if time.monotonic() >= deadlines_at:
            deadlines_at = time.monotonic() + DEADLINES_EVERY_S
            try:
                finalize_due(reducer.store)
            except Exception:  # the store briefly unavailable: the next round tries again
                log.exception("could not finalise queries past their deadline")
        if time.monotonic() >= lost_at:
            lost_at = time.monotonic() + LOST_TASKS_EVERY_S
            try:
                lost_tasks.check(reducer.store)
            except Exception:  # the broker or store briefly unavailable: the next round tries again
                log.warning("could not look for lost tasks this round", exc_info=True)
        try:
            if not recovered:
                found = reader.recover()
                recovered = True
                if found:
                    log.warning("handling %d message(s) an earlier run took but never finished", found)
            item = reader.next()
            backoff = 0.5
            if not ready:
                ready = True
                log.info("reducer consuming %d results key(s)", len(reducer.registry))
            if time.monotonic() >= alive_at:
                # health that means consuming: refreshed only after a round trip to the broker worked,
                # so a reducer that cannot read goes stale (and unhealthy) within seconds
                alive_at = time.monotonic() + ALIVE_EVERY_S
                _touch(settings.ready_file)
        except redis.RedisError as exc:
            log.warning("broker unavailable (%s); retrying in %.1f s", first_line(exc), backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        if item is None:
            if time.monotonic() >= registry_at:
                registry_at = time.monotonic() + REGISTRY_EVERY_S
                reducer.reload_registry()
            continue
        owner, raw = item
        try:
            reducer.handle(owner, raw)
        except Exception:  # a bug must never stop the reducer: log it, count it, go on
            log.exception("internal error handling a message from %s", owner)
            reducer.store.refuse(
                RefusalCode.INTERNAL_ERROR, "the reducer failed on this message", None, owner
            )
        try:
            reader.done(owner, raw)
        except redis.RedisError as exc:  # handled already; at worst it is handled again, and stored once
            log.warning("could not clear a handled message: %s", first_line(exc))
    client.close()


def _touch(ready_file: Path | None) -> None:
    if ready_file is not None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text("ready\n")
