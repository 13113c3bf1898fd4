"""When a worker counts as stuck: idle, with a heartbeat sent long ago and never consumed."""

from __future__ import annotations

from pathlib import Path

from trust_worker.liveness import Liveness


def test_a_consumed_heartbeat_refreshes_the_ready_file_and_clears_the_wait(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    live = Liveness(ready, stuck_after_s=30)
    live.sent(now=100.0)
    assert live.waiting(now=101.0) and not ready.exists()
    live.consumed()
    assert not live.waiting(now=101.0) and ready.exists()
    assert not live.stuck(now=1000.0)  # nothing outstanding


def test_an_unconsumed_heartbeat_means_stuck_only_when_idle_long_enough(tmp_path: Path) -> None:
    live = Liveness(None, stuck_after_s=30)
    live._idle_since = 0.0  # started long ago
    live.sent(now=100.0)
    assert not live.stuck(now=129.0)
    assert live.stuck(now=131.0)


def test_a_long_query_is_not_mistaken_for_a_stuck_consumer(tmp_path: Path) -> None:
    live = Liveness(None, stuck_after_s=30)
    live.sent(now=100.0)
    live.task_started()  # the heartbeat waits behind a query
    assert not live.stuck(now=500.0)
    live.task_finished(now=500.0)  # idle again: the heartbeat gets its turn now
    assert not live.stuck(now=520.0)
    assert live.stuck(now=531.0)


def test_a_heartbeat_lost_on_the_way_is_sent_again_without_resetting_the_stuck_clock() -> None:
    live = Liveness(None, stuck_after_s=30, resend_after_s=10)
    live._idle_since = 0.0
    live.sent(now=100.0)
    assert live.waiting(now=109.0)  # give the first one time
    assert not live.waiting(now=110.0)  # then send another: a full broker may have dropped it
    live.sent(now=110.0)
    assert live.waiting(now=115.0)
    assert live.stuck(now=131.0)  # still judged from the first unconsumed heartbeat
    live.consumed()  # any one of them getting through clears the wait
    assert not live.stuck(now=200.0) and not live.waiting(now=200.0)
