"""The benchmark machinery runs end to end on a tiny configuration (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.stack]


def test_dispatch_suite_writes_results_without_touching_benchmarks_md(tmp_path: Path) -> None:
    markdown = REPO / "BENCHMARKS.md"
    before = markdown.read_text() if markdown.exists() else None
    results_dir = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--suite",
            "dispatch",
            "--queries",
            "3",
            "--trusts",
            "1",
            "--results-dir",
            str(results_dir),
            "--no-markdown",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    files = list(results_dir.glob("*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())
    assert {"schema", "mode", "machine", "config", "suites", "targets", "stacks_started"} <= results.keys()
    assert results["mode"] == "quick"
    assert list(results["suites"]) == ["dispatch"]
    suite = results["suites"]["dispatch"]
    assert suite["status"] == "ok", suite
    data = suite["data"]
    assert data["queries"] == 3 and data["trusts"] == 1 and data["not_complete"] == 0
    for interval in ("submit_call", "start", "trust_run", "reply", "pooled", "observed"):
        stats = data["ms"][interval]
        assert stats["n"] == 3, interval
        assert 0 < stats["min"] <= stats["median"] <= stats["p95"] <= stats["max"], (interval, stats)
    # the pooled result cannot come before any trust started, nor the start before the submit call began
    assert data["ms"]["pooled"]["min"] > data["ms"]["start"]["min"] > 0
    assert results["machine"]["cores"] >= 1
    dispatch_target = next(t for t in results["targets"] if t["target"].startswith("Dispatch"))
    assert dispatch_target["status"] in ("met", "missed")
    others = [t for t in results["targets"] if not t["target"].startswith("Dispatch")]
    assert all(t["status"] == "not measured" for t in others)
    assert "### Dispatch latency" in proc.stdout
    after = markdown.read_text() if markdown.exists() else None
    assert after == before
