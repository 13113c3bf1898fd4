"""Names and Celery/kombu settings of the message transport, shared by trust workers and the hub.

Tasks travel on one Celery queue per trust (``trust.<id>``); answers travel on one results key per trust
(``hub.results.<id>``), a plain Redis list that only that trust may push to and only the hub reads, so no
trust can delete, overwrite or pre-empt another trust's answers. No result backend. The trust side works
under a Redis ACL user that may run only the commands its worker was recorded sending, on its own keys
(see :func:`trust_acl_rules`), so everything kombu would do on shared keys is switched off or made
per-trust here ("Celery and Redis facts that shape the design" in ``docs/architecture.md``, the ACLs in
``docs/transport.md``):

* per-trust ``unacked`` keys, so trust A cannot read or restore trust B's in-flight messages;
* ``priority_steps=[0]``: kombu then uses the plain queue key only, so an ACL can name it exactly (with the
  default steps it also polls ``<queue>\\x06\\x16<n>`` keys, which a glob would have to over-match);
* no remote control, gossip, mingle, heartbeats or events (they use shared pub/sub channels and keys);
* a transport whose lock needs no Lua (:class:`IsolatedRedisTransport`): scripting on a shared broker
  would let one trust run a busy loop that stalls every other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from kombu.entity import Exchange, Queue
from kombu.transport import redis as kombu_redis
from redis.exceptions import LockNotOwnedError, WatchError
from redis.lock import Lock

TASK_NAME = "omopfed.cohort_task"
#: A worker's heartbeat to itself, through its own queue (``trust_worker.liveness``).
HEARTBEAT_TASK_NAME = "omopfed.heartbeat"
BINDING_PREFIX = "_kombu.binding."
RESULTS_PREFIX = "hub.results."
#: Largest answer the reducer reads: a sealed answer is a few KiB; anything far larger is refused unread.
MAX_RESULT_BYTES = 256 * 1024
#: The kombu transport every worker and the hub use (import path, as Celery's ``broker_transport``).
TRANSPORT = "omop.transport:IsolatedRedisTransport"


def trust_queue_name(trust_id: str) -> str:
    return f"trust.{trust_id}"


def trust_queue(trust_id: str) -> Queue:
    name = trust_queue_name(trust_id)
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def results_key(trust_id: str) -> str:
    """The Redis list a trust pushes its sealed answers to (one per trust; only the hub reads them)."""
    return f"{RESULTS_PREFIX}{trust_id}"


def task_message_id(query_id: str, trust_id: str) -> str:
    """The Celery task id of a query's task to one trust: visible in the queue and in-flight records."""
    return f"{query_id}.{trust_id}"


def processing_key(trust_id: str) -> str:
    """The hub's list of a trust's answers being handled right now (no trust may touch it)."""
    return f"hub.processing.{trust_id}"


class _LockWithoutScripts(Lock):
    """redis-py's lock, released with WATCH/MULTI instead of a Lua script.

    kombu takes this lock around a worker's scan for messages to restore. redis-py releases it with
    EVALSHA, which would need scripting rights, and scripting (EVAL, SCRIPT LOAD + EVALSHA) on a shared
    broker lets one compromised trust run an endless script that stalls every other client. The lock
    guards one trust's own keys only, so an optimistic transaction is as good as the script.
    """

    def do_release(self, expected_token: str) -> None:
        expected = self.redis.get_encoder().encode(expected_token)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.name)
                if pipe.get(self.name) == expected:
                    pipe.multi()
                    pipe.delete(self.name)
                    pipe.execute()
                    return
                pipe.unwatch()
            except WatchError:
                pass
        raise LockNotOwnedError("Cannot release a lock that's no longer owned", lock_name=self.name)


class _RedisWithoutScripts(redis.Redis):
    def lock(  # type: ignore[override]
        self,
        name: str,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        lock_class: Any = None,
        thread_local: bool = True,
        raise_on_release_error: bool = True,
    ) -> Lock:
        return _LockWithoutScripts(
            self,
            name,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
            raise_on_release_error=raise_on_release_error,
        )


class _ChannelWithoutScripts(kombu_redis.Channel):  # type: ignore[misc]
    def _get_client(self) -> Any:
        super()._get_client()  # kombu's redis-py version check
        return _RedisWithoutScripts


class IsolatedRedisTransport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport, with a lock that needs no scripting rights (see ``_LockWithoutScripts``)."""

    Channel = _ChannelWithoutScripts


def unacked_keys(owner: str) -> dict[str, str]:
    """kombu's bookkeeping keys for messages in flight, made private to one consumer (a trust, the hub)."""
    return {
        "unacked_key": f"unacked.{owner}",
        "unacked_index_key": f"unacked_index.{owner}",
        "unacked_mutex_key": f"unacked_mutex.{owner}",
    }


def transport_options(owner: str, visibility_timeout_s: float) -> dict[str, Any]:
    return {
        **unacked_keys(owner),
        "visibility_timeout": visibility_timeout_s,
        "priority_steps": [0],
        "fanout_prefix": True,
        "fanout_patterns": True,
    }


# The worker command-line switches that keep a worker off the shared pub/sub channels.
ISOLATED_WORKER_ARGS = ("--without-gossip", "--without-mingle", "--without-heartbeat")


def touch_when_ready(ready_file: Path | None) -> None:
    """Create ``ready_file`` once a worker consumes its queue: what ``stack up`` and healthchecks wait for."""
    if ready_file is None:
        return
    from celery.signals import worker_ready

    def _ready(**_: Any) -> None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text("ready\n")

    worker_ready.connect(_ready, weak=False)


def base_config(broker_url: str, owner: str, visibility_timeout_s: float) -> dict[str, Any]:
    """Celery settings both sides share: JSON only, at-least-once delivery, no results, no events."""
    return {
        "broker_url": broker_url,
        # the transport class replaces the URL's scheme; ssl_* options in a rediss:// URL still apply,
        # and a bare rediss:// URL now fails to connect instead of skipping certificate checks
        "broker_transport": TRANSPORT,
        "broker_transport_options": transport_options(owner, visibility_timeout_s),
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # retry forever: a trust outlives hub maintenance windows
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_enable_remote_control": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "broker_heartbeat": 0,
        "task_create_missing_queues": False,
    }


# The Redis commands a trust worker sends, recorded with MONITOR on every path (start, consume, ack,
# reject, restore after a crash, reconnect, shutdown; tests/hub_broker/test_broker_acl.py records and
# replays them): nothing by category, no scripting, no CLIENT/CONFIG/DEBUG/MONITOR/pub-sub.
TRUST_QUEUE_COMMANDS = (
    "brpop",  # consume
    "llen",  # qos at start
    "sadd",  # declare its queue's binding
    "lpush",  # put back a rejected task (requeue)
    "rpush",  # put back a task whose worker died (restore)
    "multi",
    "exec",
    "watch",
    "unwatch",
    "zadd",  # in-flight index
    "zrem",
    "zrange",
    "hset",  # in-flight messages
    "hget",
    "hdel",
    "set",  # the restore lock (SET NX PX)
    "get",
    "del",
)
# redis-py also sends CLIENT SETINFO on connect and ignores a refusal; Redis 7.0 does not know it, so
# naming it would make the ACL file unloadable there.
TRUST_CONNECTION_COMMANDS = ("auth", "hello", "ping", "select")


def trust_acl_rules(trust_id: str) -> list[str]:
    """A trust user's ACL rules: its queue keys read-write, its results key push-only, nothing else.

    Key and command permissions are granted together (Redis 7 selectors): the queue commands on the
    trust's own queue and bookkeeping keys, and RPUSH alone on its results key.
    """
    own = trust_queue_name(trust_id)
    keys = [own, f"{BINDING_PREFIX}{own}", f"_kombu.binding_permanent.{own}", *unacked_keys(own).values()]
    queue_selector = " ".join([*(f"~{k}" for k in keys), *(f"+{c}" for c in TRUST_QUEUE_COMMANDS)])
    return [
        "resetkeys",
        "resetchannels",
        "-@all",
        *(f"+{c}" for c in TRUST_CONNECTION_COMMANDS),
        f"({queue_selector})",
        f"(%W~{results_key(trust_id)} +rpush)",
    ]
