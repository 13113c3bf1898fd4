"""Running the real ``omopfed`` command as a user would, and the checks every CLI test makes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The console script installed next to the interpreter running the tests: the entry point users run.
OMOPFED = str(Path(sys.executable).parent / "omopfed")


def run_omopfed(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``omopfed ARGS`` in a clean environment: no developer OMOPFED_* variables leak in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMOPFED_")}
    clean.update(env or {})
    return subprocess.run(
        [OMOPFED, *map(str, args)],
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    """Exit ``code``, no traceback, exactly one non-empty line on stderr, and it mentions ``needle``."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert_no_traceback(proc)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
