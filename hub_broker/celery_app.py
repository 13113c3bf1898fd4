"""The hub's Celery side: the app that publishes signed tasks to the trust queues.

Answers come back on plain per-trust results keys that ``hub_broker.reducer`` reads itself; the hub runs no
Celery worker, so no message can make it run Celery's built-in tasks.
"""

from __future__ import annotations

from functools import cache

from celery import Celery

from hub_broker.settings import HubSettings
from omop.transport import base_config

HUB_OWNER = "hub"
# The hub publishes only; the visibility window matters to consumers, which the hub is not.
HUB_VISIBILITY_S = 300.0


def hub_app(settings: HubSettings) -> Celery:
    """The hub's Celery app for this broker; one per process, so its connection pool is reused."""
    return _hub_app(settings.broker_url)


@cache
def _hub_app(broker_url: str) -> Celery:
    app = Celery("omopfed-hub", set_as_current=False)
    app.conf.update(base_config(broker_url, HUB_OWNER, HUB_VISIBILITY_S))
    return app
