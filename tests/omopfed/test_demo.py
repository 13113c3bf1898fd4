"""``omopfed demo`` as a user runs it: real stack, four queries, everything stopped afterwards."""

from __future__ import annotations

import pytest

from tests.cli_runner import assert_no_traceback, run_omopfed

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.stack]


def test_demo_runs_shows_results_and_cleans_up() -> None:
    proc = run_omopfed("demo", timeout=300)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("federated persons:") == 4
    assert "numeric (pooled)" in out and "bmi histogram" in out
    assert "released" in out  # a small trust's "suppressed" depends on the noise now
    assert "±" in out and "dp ε 1" in out  # dp by default: figures shown with their noise
    assert "CT Spleen" in out and "GI-bleed" in out
    assert "stopped and removed" in out and "demo finished" in out
