"""Queue depths as the hub sees them: what is waiting for each trust, what is in flight, what awaits the
reducer. Celery's own monitoring needs events and shared pub/sub channels that the isolated workers do not
use, so the hub reads the (per-trust) kombu keys directly with its own broker user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from omop.errors import OmopFedError
from omop.transport import RESULTS_QUEUE, trust_queue_name, unacked_keys


def queue_depths(broker_url: str, trust_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """``{queue: {"waiting": n, "in_flight": m}}`` for every trust queue and ``hub.results``."""
    client: Any = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    owners = {trust_queue_name(t): trust_queue_name(t) for t in trust_ids}
    owners[RESULTS_QUEUE] = "hub"
    try:
        pipe = client.pipeline(transaction=False)
        for queue, owner in owners.items():
            pipe.llen(queue)
            pipe.hlen(unacked_keys(owner)["unacked_key"])
        counts = pipe.execute()
    except redis.RedisError as exc:
        raise OmopFedError(f"cannot read the broker: {str(exc).splitlines()[0]}") from exc
    finally:
        client.close()
    return {
        queue: {"waiting": int(counts[2 * i]), "in_flight": int(counts[2 * i + 1])}
        for i, queue in enumerate(owners)
    }
