"""Pure parts of the benchmark harness: statistics, target judgement, the BENCHMARKS.md update."""

from __future__ import annotations

import statistics
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import report, targets
from benchmarks.indb_child import age_band, aggregate_rows
from benchmarks.stats import percentile, sample_sd, summary
from benchmarks.suite_startup import imports_by_package


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=60))
def test_percentile_matches_the_inclusive_method_of_the_standard_library(values: list[float]) -> None:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    assert percentile(values, 95) == pytest.approx(cuts[18], rel=1e-9, abs=1e-6)
    assert percentile(values, 50) == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-6)
    assert sample_sd(values) == pytest.approx(statistics.stdev(values), rel=1e-6, abs=1e-6)


def test_summary_of_nothing_and_of_one_value() -> None:
    assert summary([]) == {"n": 0}
    one = summary([4.0])
    assert one["n"] == 1 and one["median"] == one["p95"] == 4.0 and one["sd"] == 0.0
    with pytest.raises(ValueError):
        percentile([], 50)


def _results(**suites: dict[str, Any]) -> dict[str, Any]:
    return {"suites": {name: {"status": "ok", "data": data} for name, data in suites.items()}}


def test_targets_are_met_missed_or_not_measured() -> None:
    results = _results(
        dispatch={"ms": {"start": {"n": 50, "median": 4.0, "p95": 9.0}}},
        federation={
            "rows": [
                {"persons_per_trust": 10_000, "ratio": {"in_process": 9.0, "whole_command": 30.0}},
                {"persons_per_trust": 100_000, "ratio": {"in_process": 1.1, "whole_command": 1.3}},
            ]
        },
        scale={"rows": [{"trusts": 8, "pooled_ms": {"median": 300.0}}]},
    )
    results["suites"]["flower"] = {"status": "skipped", "reason": "numeric statistics not available"}
    judged = {t["target"].split(" ")[0]: t for t in targets.evaluate(results)}
    assert judged["Dispatch:"]["status"] == "met"
    # the 10k row is ignored; the whole command's 1.3x misses the 1.25x goal
    assert judged["Federation"]["status"] == "missed" and "1.10–1.10×" in judged["Federation"]["measured"]
    assert judged["In-database"]["status"] == "not measured"
    assert judged["32"]["status"] == "not measured" and "8 trusts" in judged["32"]["measured"]
    assert judged["The"]["status"] == "not measured"
    assert judged["The"]["measured"] == "numeric statistics not available"


def _indb_row(rows: int, pipeline_s: float, fetch_s: float, peak: float) -> dict[str, Any]:
    def variant(seconds: float, rss: float) -> dict[str, Any]:
        return {"seconds": {"median": seconds}, "peak_rss_mb": {"median": rss}}

    return {
        "cohort_rows": rows,
        "pipeline": variant(pipeline_s, peak),
        "fetchall": variant(fetch_s, 500.0),
        "speedup": round(fetch_s / pipeline_s, 2),
    }


def test_indb_target_needs_speed_and_flat_memory_at_a_million_rows() -> None:
    fast_flat = _results(
        indb={"rows": [_indb_row(100_000, 0.1, 2.5, 80.0), _indb_row(1_000_000, 0.1, 25.0, 82.0)]}
    )
    assert targets.indb(fast_flat)["status"] == "met"
    growing = _results(
        indb={"rows": [_indb_row(100_000, 0.1, 2.5, 80.0), _indb_row(1_000_000, 0.1, 25.0, 200.0)]}
    )
    assert targets.indb(growing)["status"] == "missed"
    slow = _results(indb={"rows": [_indb_row(1_000_000, 1.0, 2.0, 80.0)]})
    assert targets.indb(slow)["status"] == "missed"


def test_markdown_update_replaces_only_its_own_mode_block(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    q_start, q_end = report.markers("quick")
    f_start, f_end = report.markers("full")
    quick_block, full_block = f"{q_start}\nold quick\n{q_end}", f"{f_start}\nold full\n{f_end}"
    path.write_text(f"# Hand-written\n\nintro\n\n{quick_block}\n\nmiddle\n\n{full_block}\ntail\n")
    results = {
        "mode": "quick",
        "started_at": "2025-01-01 00:00:00 UTC",
        "duration_s": 12.0,
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "memory_gib": 1.0,
            "os": "os",
            "python": "3.11",
            "packages": {},
        },
        "suites": {"flower": {"status": "skipped", "reason": "numeric statistics not available"}},
        "targets": [],
    }
    report.update_markdown(path, results)
    text = path.read_text()
    assert "old quick" not in text and "old full" in text
    assert text.startswith("# Hand-written\n\nintro\n") and "middle" in text and text.endswith("tail\n")
    assert "Skipped: numeric statistics not available." in text
    assert text.count(q_start) == 1 and text.count(q_end) == 1


def test_results_file_names_never_overwrite(tmp_path: Path) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7)
    first = report.results_path(tmp_path, when)
    first.write_text("{}")
    second = report.results_path(tmp_path, when)
    assert first.name == "2025-03-04.json" and second.name == "2025-03-04-2.json"


def test_python_side_age_bands_follow_the_trust_rules() -> None:
    today = date(2025, 6, 15)
    # birth_datetime wins; the day before the birthday the person is still the younger age
    assert age_band((1, 8507, 1900, 1, 1, datetime(1985, 6, 16)), today) == "30-39"
    assert age_band((1, 8507, 1985, 6, 15, None), today) == "40-49"
    # unknown month → 1 July; unknown day → the 1st
    assert age_band((1, 8507, 2015, None, 20, None), today) == "0-9"
    assert age_band((1, 8507, 1930, 13, 5, None), today) == "90+"
    assert age_band((1, 8507, None, None, None, None), today) == "Unknown"
    assert age_band((1, 8507, 2030, 1, 1, None), today) == "Unknown"


def test_fetch_all_aggregation_counts_persons_not_rows() -> None:
    rows = [
        (1, 8507, 1980, 1, 1, None),
        (1, 8507, 1980, 1, 1, None),
        (2, 8532, 1990, 1, 1, None),
        (None, 0, None, None, None, None),
    ]
    out = aggregate_rows(rows, date(2025, 6, 15))
    assert out["person_count"] == 2 and out["row_count"] == 4
    assert out["sex"] == {"Male": 1, "Female": 1}
    assert out["columns"]["person_id"] == [3, 1] and out["columns"]["year_of_birth"] == [3, 1]


def test_import_times_are_summed_per_top_level_package() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     celery.utils",
            "import time:       200 |       5000 |   celery.app",
            "import time:       300 |       9000 | celery",
            "import time:      2000 |       2000 | sqlglot",
            "some other line",
        ]
    )
    assert imports_by_package(stderr) == {
        "total_ms": 2.6,
        "top": [{"package": "sqlglot", "self_ms": 2.0}, {"package": "celery", "self_ms": 0.6}],
    }
