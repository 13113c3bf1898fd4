"""Running the product's own command line as a researcher would, and timing it from outside."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "omopfed" / "examples"


def omopfed_command() -> list[str]:
    """The installed ``omopfed`` script next to this interpreter, else ``python -m omopfed.cli``."""
    script = Path(sys.executable).with_name("omopfed")
    return [str(script)] if script.exists() else [sys.executable, "-m", "omopfed.cli"]


def clean_env() -> dict[str, str]:
    """This process's environment without OMOPFED_* variables, so only the stack's env file counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OMOPFED_")}


@dataclass(frozen=True)
class Timed:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_timed(args: list[str], timeout: float = 900.0) -> Timed:
    """Run ``args`` to completion; wall time from just before the fork to just after the exit."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        args, capture_output=True, text=True, env=clean_env(), timeout=timeout, check=False, cwd=REPO
    )
    return Timed(time.perf_counter() - t0, proc.returncode, proc.stdout, proc.stderr)


def last_line(text: str) -> str:
    """The last non-empty line (where a one-line error or a traceback's message ends up)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"
