"""Start-up cost of the hub's command: the interpreter, the imports, and the command with no work to do.

Every whole-command figure (``omopfed hub submit`` in the federation and Flower suites) pays this before
it sends anything, so it is measured on its own to say where a command's time goes.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.commands import omopfed_command, run_timed
from benchmarks.config import Config
from benchmarks.stacks import Stack
from benchmarks.stats import summary
from benchmarks.suite import Context, Plan, Row, Unit, ms

NAME = "startup"
TOP_IMPORTS = 10


def commands() -> list[tuple[str, list[str]]]:
    py = sys.executable
    return [
        ("python -c pass", [py, "-c", "pass"]),
        ("import hub_broker.cli", [py, "-c", "import hub_broker.cli"]),
        ("import omopfed.cli", [py, "-c", "import omopfed.cli"]),
        ("omopfed hub submit --help", [*omopfed_command(), "hub", "submit", "--help"]),
    ]


def imports_by_package(stderr: str, top: int = TOP_IMPORTS) -> dict[str, Any]:
    """Import time from ``python -X importtime`` output, summed per top-level package.

    Lines look like ``import time:  self [us] | cumulative | <indent>module``. Summing each module's
    *self* time under its top-level package (``sqlalchemy.orm.session`` → ``sqlalchemy``) attributes
    every microsecond exactly once, whoever imported the module first.
    """
    per_package: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        package = parts[2].strip().split(".")[0]
        per_package[package] = per_package.get(package, 0) + int(parts[0])
    ranked = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "total_ms": round(sum(per_package.values()) / 1000, 1),
        "top": [{"package": k, "self_ms": round(v / 1000, 1)} for k, v in ranked[:top]],
    }


def _run(ctx: Context, _stack: Stack | None) -> Row:
    rows = []
    for label, args in commands():
        times = []
        for _ in range(ctx.config.startup_repeats):
            timed = run_timed(args, timeout=120)
            if timed.returncode != 0:
                raise RuntimeError(f"{label} exited with {timed.returncode}")
            times.append(ms(timed.seconds))
        rows.append({"command": label, "ms": summary(times, 1)})
    profile = run_timed(
        [sys.executable, "-X", "importtime", "-m", "omopfed.cli", "hub", "submit", "--help"], timeout=120
    )
    return {"commands": rows, "imports_of_hub_submit": imports_by_package(profile.stderr)}


def plan(config: Config) -> Plan:
    return Plan([Unit(NAME, "interpreter and import start-up", None, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
