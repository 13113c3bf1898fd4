"""A trust worker stripped to its transport, for recording the Redis commands a worker sends.

It runs the real Celery configuration of a trust (``omop.transport.base_config``: the isolated transport,
per-trust keys, acks late) and the real start-up restore (``return_inflight_tasks``); only the task is a
stand-in whose behaviour the test chooses per message: finish, be rejected and requeued once, or work long
enough to be killed mid-task. Run as ``python recorded_worker.py BROKER_URL TRUST_ID MARKER_DIR``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject

from omop.transport import (
    HEARTBEAT_TASK_NAME,
    ISOLATED_WORKER_ARGS,
    TASK_NAME,
    base_config,
    trust_queue,
    trust_queue_name,
)
from trust_worker.celery_app import return_inflight_tasks, start_heartbeat
from trust_worker.liveness import Liveness


def main(broker_url: str, trust_id: str, markers: Path) -> None:
    app = Celery("recorded", set_as_current=False)
    app.conf.update(base_config(broker_url, trust_queue_name(trust_id), 5.0))
    app.conf.task_queues = [trust_queue(trust_id)]

    @app.task(name=TASK_NAME, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def task(wire: dict[str, Any]) -> str:
        marker = markers / str(wire["id"])
        first = not marker.exists()
        marker.touch()
        if wire["kind"] == "reject" and first:
            raise Reject("try again", requeue=True)
        if wire["kind"] == "slow" and first:
            time.sleep(60)  # killed before this ends
        return "done"

    liveness = Liveness(markers / "ready")

    @app.task(name=HEARTBEAT_TASK_NAME, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def heartbeat(_sent_at: float) -> None:
        liveness.consumed()

    client = redis.Redis.from_url(broker_url)
    return_inflight_tasks(client, trust_id)
    client.close()
    start_heartbeat(app, trust_id, liveness)
    app.worker_main(
        [
            "worker",
            "-Q",
            trust_queue_name(trust_id),
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            *ISOLATED_WORKER_ARGS,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
