"""Ports, PIDs and waiting: the process plumbing shared by the embedded servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from omop.errors import LocalServiceError as LocalServiceError


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True while a process with this PID exists and is not a zombie we could reap."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
    *,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check`` until it is true; raise a one-line ``LocalServiceError`` naming ``what`` otherwise.

    While the server comes up ``check`` may fail (connection refused, still loading): any exception counts as
    "not ready yet", except a ``LocalServiceError``, which means waiting is pointless and is raised at once.
    Given the server's ``process``, waiting stops as soon as it exits, with an error that says so and gives
    its exit code, instead of polling a dead server until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and (code := process.poll()) is not None:
            raise LocalServiceError(f"{what} exited during start-up ({exit_status(code)})")
        try:
            if check():
                return
        except LocalServiceError:
            raise
        except Exception:  # noqa: S110 - not ready yet; the timeout bounds the waiting
            pass
        if time.monotonic() >= deadline:
            raise LocalServiceError(f"{what} did not become ready within {timeout:.0f} s")
        time.sleep(interval)


def exit_status(code: int) -> str:
    """``exit code 1`` or ``killed by signal 9 (SIGKILL)``, from a ``Popen.returncode``."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"killed by signal {-code}{name}"


def log_tail(log: Path, lines: int = 3) -> str:
    """The last ``lines`` non-blank lines of a server's log, joined with `` | `` (one line for a message)."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    except OSError as exc:
        return f"(log unreadable: {exc.strerror or exc})"
    kept = [line.strip() for line in text if line.strip()]
    return " | ".join(kept[-lines:]) or "(empty log)"


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Send ``sig`` to ``pid`` and wait for it to exit; escalate to SIGKILL after ``timeout``."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc; just ``pid`` where there is no /proc).

    PostgreSQL puts every backend in a session of its own, so a process group does not reach them.
    """
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found
