"""What operators see of the broker: per trust, tasks waiting and in flight, answers waiting for the
reducer, and the messages the reducer refused from that trust (how many, and the last reason).

Celery's own monitoring needs events and shared pub/sub channels that the isolated workers do not use, so
the hub reads the (per-trust) kombu keys and results keys directly with its own broker user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from omop.errors import OmopFedError, first_line
from omop.transport import results_key, trust_queue_name, unacked_keys


def queue_depths(
    broker_url: str, trust_ids: Iterable[str], refusals: Mapping[str, tuple[int, str | None]] | None = None
) -> dict[str, dict[str, Any]]:
    """``{"trust.<id>": {waiting, in_flight, answers_waiting, refused, last_refusal}}`` per trust.

    ``refusals`` (trust id -> (count, last reason)) comes from the hub store.
    """
    ids = list(trust_ids)
    client: Any = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        pipe = client.pipeline(transaction=False)
        for trust_id in ids:
            queue = trust_queue_name(trust_id)
            pipe.llen(queue)
            pipe.hlen(unacked_keys(queue)["unacked_key"])
            pipe.llen(results_key(trust_id))
        counts = pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        raise OmopFedError(f"cannot read the broker: {first_line(exc)}") from exc
    finally:
        client.close()
    out: dict[str, dict[str, Any]] = {}
    for i, trust_id in enumerate(ids):
        waiting, in_flight, answers = (c if isinstance(c, int) else -1 for c in counts[3 * i : 3 * i + 3])
        refused, last = (refusals or {}).get(trust_id, (0, None))
        out[trust_queue_name(trust_id)] = {
            "waiting": waiting,
            "in_flight": in_flight,
            "answers_waiting": answers,
            "refused": refused,
            "last_refusal": last,
        }
    return out


#: Broker memory one task takes, measured on Valkey 9: about 3 KB plus 1.8 bytes per byte of SQL.
TASK_BASE_BYTES = 3 * 1024
#: A submission is refused when it would bring the broker above this share of its memory limit.
FULL_SHARE = 0.95


def check_broker_room(client: Any, tasks: int, sql_bytes: int) -> None:
    """Refuse (before anything is recorded) a submission the broker has no memory left to queue.

    A full broker (``maxmemory`` with ``noeviction``) refuses writes; finding that out while publishing
    would leave a recorded query that can never be answered.
    """
    try:
        info = client.info("memory")
    except redis.RedisError as exc:
        raise OmopFedError(f"cannot read the broker: {first_line(exc)}") from exc
    limit = int(info.get("maxmemory") or 0)
    used = int(info.get("used_memory") or 0)
    need = tasks * (TASK_BASE_BYTES + 2 * sql_bytes)
    if limit and used + need > FULL_SHARE * limit:
        raise OmopFedError(
            f"the broker is full ({used / 2**20:.1f} of {limit / 2**20:.0f} MiB used): nothing was "
            "recorded or sent; retry once the trusts have taken their tasks, or raise the broker's maxmemory"
        )
