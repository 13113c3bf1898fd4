"""Health that means consuming: a trust worker proves every few seconds that it still receives and acks.

Every ``HEARTBEAT_EVERY_S`` the worker publishes a heartbeat onto its own queue; consuming it (a real
receive and acknowledge through the broker) refreshes the ready file that ``stack up`` and the compose
healthcheck read. While a query runs the heartbeat waits its turn, so a worker is judged only when idle:
a heartbeat still unconsumed ``STUCK_AFTER_S`` after it was sent, with no task running, means the
consumer stopped consuming although the process lives (a "zombie" after a broker outage). The worker then
starts itself afresh (the same command line), which reconnects, puts its in-flight tasks back and goes on.

A heartbeat can also be lost while the consumer is fine: a broker at its memory limit accepts the push
but fails the consumer's bookkeeping write, and the message is gone. So an unconsumed heartbeat is sent
again every ``RESEND_AFTER_S``; the first one that gets through clears the wait, and only a consumer that
takes none of them for ``STUCK_AFTER_S`` is restarted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEARTBEAT_EVERY_S = 5.0
RESEND_AFTER_S = 10.0
STUCK_AFTER_S = 30.0


@dataclass
class Liveness:
    """What the heartbeat thread and the consumer share; all times from ``time.monotonic``."""

    ready_file: Path | None
    stuck_after_s: float = STUCK_AFTER_S
    resend_after_s: float = RESEND_AFTER_S
    _pending_since: float | None = None
    _last_sent: float = 0.0
    _busy: int = 0
    _idle_since: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, now: float) -> None:
        with self._lock:
            self._last_sent = now
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

    def waiting(self, now: float) -> bool:
        """A heartbeat is out, not consumed yet and recent: do not send another (an old one may be lost)."""
        with self._lock:
            return self._pending_since is not None and now - self._last_sent < self.resend_after_s

    def stuck(self, now: float) -> bool:
        """Idle, yet a heartbeat sent long ago (since the last task ended) was never consumed."""
        with self._lock:
            if self._busy or self._pending_since is None:
                return False
            since = max(self._pending_since, self._idle_since)
            return now - since > self.stuck_after_s
