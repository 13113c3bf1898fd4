"""Names and Celery/kombu settings of the message transport, shared by trust workers and the hub.

One queue per trust (``trust.<id>``), one results queue (``hub.results``), no result backend. The trust
side must work under a Redis ACL user that may touch only its own keys, so everything kombu would do on
shared keys is switched off or made per-trust here (see DESIGN.md, "Celery/Redis facts"):

* per-trust ``unacked`` keys, so trust A cannot read or restore trust B's in-flight messages;
* ``priority_steps=[0]``: kombu then uses the plain queue key only, so an ACL can name it exactly (with the
  default steps it also polls ``<queue>\\x06\\x16<n>`` keys, which a glob would have to over-match);
* no remote control, gossip, mingle, heartbeats or events (they use shared pub/sub channels and keys).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kombu.entity import Exchange, Queue

RESULTS_QUEUE = "hub.results"
TASK_NAME = "omopfed.cohort_task"
RESULT_TASK_NAME = "omopfed.trust_result"
BINDING_PREFIX = "_kombu.binding."


def trust_queue_name(trust_id: str) -> str:
    return f"trust.{trust_id}"


def trust_queue(trust_id: str) -> Queue:
    name = trust_queue_name(trust_id)
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def results_queue() -> Queue:
    return Queue(RESULTS_QUEUE, Exchange(RESULTS_QUEUE, type="direct"), routing_key=RESULTS_QUEUE)


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


# Redis commands kombu and Celery need on the consuming and publishing side (measured with kombu 5.7:
# anything less makes the worker die with NOPERM; anything more is not needed).
TRUST_ACL_COMMANDS = (
    "+@connection",
    "+ping",
    "+select",
    "+client|setname",
    "+brpop",
    "+lpush",
    "+llen",
    "+del",
    "+get",
    "+set",
    "+zadd",
    "+zrem",
    "+zrange",
    "+zrangebyscore",
    "+zrevrangebyscore",
    "+hset",
    "+hget",
    "+hdel",
    "+smembers",
    "+sadd",
    "+multi",
    "+exec",
    "+watch",
    "+unwatch",
    "+eval",
    "+evalsha",
    "+script|load",
    "+script|exists",
)


def trust_acl_keys(trust_id: str) -> list[str]:
    """Key permissions for a trust's Redis user: its own queue and bookkeeping, write-only on results."""
    own = trust_queue_name(trust_id)
    keys = [own, f"{BINDING_PREFIX}{own}", f"_kombu.binding_permanent.{own}"]
    keys += list(unacked_keys(own).values())
    return [
        *(f"~{k}" for k in keys),
        f"%R~{BINDING_PREFIX}{RESULTS_QUEUE}",
        f"%R~_kombu.binding_permanent.{RESULTS_QUEUE}",
        f"%W~{RESULTS_QUEUE}",
    ]
