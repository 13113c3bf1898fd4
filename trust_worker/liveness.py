"""Health that means consuming: a trust worker proves every few seconds that it still receives and acks.

Every ``HEARTBEAT_EVERY_S`` the worker publishes a heartbeat onto its own queue; consuming it (a real
receive and acknowledge through the broker) refreshes the ready file that ``stack up`` and the compose
healthcheck read. While a query runs the heartbeat waits its turn, so a worker is judged only when idle:
a heartbeat still unconsumed ``STUCK_AFTER_S`` after it was sent, with no task running, means the
consumer stopped consuming although the process lives (a "zombie" after a broker outage). The worker then
starts itself afresh (the same command line), which reconnects, puts its in-flight tasks back and goes on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEARTBEAT_EVERY_S = 5.0
STUCK_AFTER_S = 30.0


@dataclass
class Liveness:
    """What the heartbeat thread and the consumer share; all times from ``time.monotonic``."""

    ready_file: Path | None
    stuck_after_s: float = STUCK_AFTER_S
    _pending_since: float | None = None
    _busy: int = 0
    _idle_since: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, now: float) -> None:
        with self._lock:
            if self._pending_since is None:
                self._pending_since = now

    def consumed(self) -> None:
        """A heartbeat (or any task) went through the broker to this consumer and back: alive."""
        with self._lock:
            self._pending_since = None
        self.touch()

    def touch(self) -> None:
        if self.ready_file is not None:
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.write_text("ready\n")

    def task_started(self) -> None:
        with self._lock:
            self._busy += 1
        self.touch()

    def task_finished(self, now: float) -> None:
        with self._lock:
            self._busy -= 1
            self._idle_since = now
        self.touch()

    def waiting(self) -> bool:
        """A heartbeat is out and not consumed yet: do not send another."""
        with self._lock:
            return self._pending_since is not None

    def stuck(self, now: float) -> bool:
        """Idle, yet a heartbeat sent long ago (since the last task ended) was never consumed."""
        with self._lock:
            if self._busy or self._pending_since is None:
                return False
            since = max(self._pending_since, self._idle_since)
            return now - since > self.stuck_after_s
