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


def parse_importtime(stderr: str, top: int = TOP_IMPORTS) -> list[dict[str, Any]]:
    """The ``top`` first-level imports by cumulative time from ``python -X importtime`` output.

    Lines look like ``import time:  self [us] | cumulative | <indent>package``; the indent (two spaces
    per level) says how deep the import is nested. Only modules imported directly by the measured
    statement (level 0) are ranked, since their cumulative time includes everything under them.
    """
    entries: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        level = (len(name) - len(name.lstrip()) - 1) // 2
        if level == 0:
            entries.append({"module": name.strip(), "cumulative_ms": round(int(parts[1]) / 1000, 1)})
    entries.sort(key=lambda e: e["cumulative_ms"], reverse=True)
    return entries[:top]


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
    profile = run_timed([sys.executable, "-X", "importtime", "-c", "import omopfed.cli"], timeout=120)
    return {"commands": rows, "imports_of_omopfed_cli": parse_importtime(profile.stderr)}


def plan(config: Config) -> Plan:
    return Plan([Unit(NAME, "interpreter and import start-up", None, _run)])


def summarize(config: Config, rows: list[Row]) -> dict[str, Any]:
    return rows[0] if rows else {}
