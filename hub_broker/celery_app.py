"""The hub's Celery side: the app that publishes tasks to trust queues and the reducer worker on results."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery import Celery

from hub_broker.reducer import Reducer
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.keys import load_hub_private
from omop.transport import (
    ISOLATED_WORKER_ARGS,
    RESULT_TASK_NAME,
    RESULTS_QUEUE,
    base_config,
    results_queue,
    touch_when_ready,
)

HUB_OWNER = "hub"
# Only the reducer consumes hub.results; a result is handled in milliseconds, so a short visibility window
# is enough and brings messages of a crashed reducer back quickly.
REDUCER_VISIBILITY_S = 300.0


def hub_app(settings: HubSettings) -> Celery:
    """The hub's Celery app for this broker; one per process, so its connection pool is reused."""
    return _hub_app(settings.broker_url)


@cache
def _hub_app(broker_url: str) -> Celery:
    app = Celery("omopfed-hub", set_as_current=False)
    app.conf.update(base_config(broker_url, HUB_OWNER, REDUCER_VISIBILITY_S))
    app.conf.task_queues = [results_queue()]
    app.conf.task_default_queue = RESULTS_QUEUE
    return app


def run_reducer(settings: HubSettings, loglevel: str = "INFO") -> None:
    keys = load_hub_private(settings.hub_keys_dir)
    reducer = Reducer(HubStore(settings.hub_store_url), keys.encryption, settings.hub_keys_dir)
    reducer.reload_registry()
    app = hub_app(settings)

    @app.task(name=RESULT_TASK_NAME, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def trust_result(wire: Any) -> str:
        return reducer.handle(wire)

    touch_when_ready(settings.ready_file)

    logging.getLogger("omopfed").setLevel(loglevel)
    app.worker_main(
        [
            "worker",
            "-Q",
            RESULTS_QUEUE,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--hostname",
            "hub-reducer@%h",
            "--loglevel",
            loglevel,
            *ISOLATED_WORKER_ARGS,
        ]
    )
