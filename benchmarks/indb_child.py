"""One variant of the in-database aggregation benchmark, run in a fresh interpreter by ``suite_indb``.

``python -m benchmarks.indb_child pipeline|fetchall`` reads the reader URL and the (validated,
re-emitted) cohort SQL from ``BENCH_READER_URL`` / ``BENCH_SQL``, does the work once and prints one JSON
object: the time the work took, its peak resident memory (``VmHWM``) and the memory after imports,
and the figures it computed (so the parent can check both variants agree).

* ``pipeline``: the trust's own code path, ``trust_worker.pipeline.answer_cohort`` (validate, wrap in the
  aggregation statement, one round trip, disclosure control). Cohort rows stay in PostgreSQL.
* ``fetchall``: what FLIP's and Flower's site code does: run the cohort query, ``fetchall()`` every row
  into Python, then count distinct persons, rows, non-null values per column, and the sex and age
  distributions of the distinct persons in Python.

A fresh process per run makes the peak memory that of this run alone.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import date, datetime
from typing import Any

# The cohort both variants work on: one row per person, with what the Python side needs for sex and age.
COHORT_COLUMNS = (
    "person_id",
    "gender_concept_id",
    "year_of_birth",
    "month_of_birth",
    "day_of_birth",
    "birth_datetime",
)
MALE, FEMALE = 8507, 8532


def _status_kb(name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_kb() -> int:
    """This interpreter's peak resident memory in KiB.

    ``VmHWM`` belongs to the address space created by ``exec``, so it is this program's alone.
    ``ru_maxrss`` is only the fallback (not Linux): it survives ``exec``, so a child forked from a large
    parent starts with the parent's peak (the benchmark runner's ~110 MB would mask everything).
    """
    hwm = _status_kb("VmHWM")
    return hwm if hwm is not None else int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_kb() -> int:
    rss = _status_kb("VmRSS")
    return rss if rss is not None else peak_rss_kb()


def age_band(row: tuple[Any, ...], today: date) -> str:
    """The same age and band rules as the trust's aggregation SQL, in Python."""
    _pid, _gender, year, month, day, birth_dt = row
    birth: date | None = None
    if isinstance(birth_dt, datetime):
        birth = birth_dt.date()
    elif year is not None and 1 <= year <= 9999:
        month_known = month is not None and 1 <= month <= 12
        day_known = month_known and day is not None and 1 <= day <= 28
        birth = date(year, month if month_known else 7, day if day_known else 1)
    if birth is None:
        return "Unknown"
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    if years < 0:
        return "Unknown"
    if years >= 90:
        return "90+"
    low = years // 10 * 10
    return f"{low}-{low + 9}"


def aggregate_rows(rows: list[tuple[Any, ...]], today: date) -> dict[str, Any]:
    """What the fetch-all variant computes from the fetched rows (raw figures, no disclosure control)."""
    persons: dict[Any, tuple[Any, ...]] = {}
    non_null = [0] * len(COHORT_COLUMNS)
    for row in rows:
        for i, value in enumerate(row):
            if value is not None:
                non_null[i] += 1
        if row[0] is not None and row[0] not in persons:
            persons[row[0]] = row
    sex: Counter[str] = Counter()
    age: Counter[str] = Counter()
    for row in persons.values():
        gender = row[1]
        sex["Male" if gender == MALE else "Female" if gender == FEMALE else "Unknown"] += 1
        age[age_band(row, today)] += 1
    return {
        "person_count": len(persons),
        "row_count": len(rows),
        "columns": {c: [n, len(rows) - n] for c, n in zip(COHORT_COLUMNS, non_null, strict=True)},
        "sex": dict(sex),
        "age": dict(age),
    }


def run_fetchall(sql: str, url: str) -> dict[str, Any]:
    from trust_worker.db import connect

    with connect(url) as conn:
        rows = conn.execute(sql).fetchall()
        today = conn.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]
    return aggregate_rows(rows, today)


def run_pipeline(sql: str, url: str) -> dict[str, Any]:
    from omop.states import ResultStatus
    from trust_worker.executor import ReaderExecutor
    from trust_worker.pipeline import answer_cohort
    from trust_worker.policy_file import TrustPolicy

    executor = ReaderExecutor(url)
    try:
        answer = answer_cohort(
            sql, query_id="bench", trust_id="bench", project_id=None, policy=TrustPolicy(), executor=executor
        )
    finally:
        executor.close()
    result = answer.result.model_dump(mode="json")
    if result["status"] != ResultStatus.RELEASED:
        raise RuntimeError(f"the pipeline answered {result['status']}: {result.get('detail')}")
    return {k: result.get(k) for k in ("person_count", "row_count", "columns", "sex", "age")}


def _preload(variant: str) -> None:
    """Import what the variant needs before measuring, so the time is the work, not the imports."""
    if variant == "pipeline":
        import trust_worker.pipeline
    else:
        import trust_worker.db  # noqa: F401


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("pipeline", "fetchall"):
        print("usage: python -m benchmarks.indb_child pipeline|fetchall", file=sys.stderr)
        return 2
    variant = argv[0]
    url, sql = os.environ["BENCH_READER_URL"], os.environ["BENCH_SQL"]
    _preload(variant)
    after_imports = current_rss_kb()
    t0 = time.perf_counter()
    figures = run_pipeline(sql, url) if variant == "pipeline" else run_fetchall(sql, url)
    seconds = time.perf_counter() - t0
    out = {
        "variant": variant,
        "seconds": seconds,
        "peak_rss_kb": peak_rss_kb(),
        "rss_after_imports_kb": after_imports,
        "figures": figures,
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
