"""Running the real ``omopfed`` command as a user would, and the checks every CLI test makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def hub_submit_json(env_file: Path, *args: str, timeout: float = 180) -> tuple[int, dict[str, Any]]:
    """``omopfed hub submit --json`` against the hub described by ``env_file``: exit code and the object.

    Also checks the promise that stdout holds exactly one JSON object and nothing else.
    """
    proc = run_omopfed("hub", "submit", "--env-file", str(env_file), "--json", *args, timeout=timeout)
    assert_no_traceback(proc)
    assert proc.stdout.count("\n") == 1, (
        f"stdout must hold exactly one JSON object: {proc.stdout!r} {proc.stderr}"
    )
    return proc.returncode, json.loads(proc.stdout)
