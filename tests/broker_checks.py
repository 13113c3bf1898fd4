"""Reading broker settings back from their renderings, and real servers started with them."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from omopfed.broker_config import maxmemory_bytes

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-test-password"
# A test-only ACL file: the default user off, as in every deployment, and an admin that may read CONFIG
# (the hub's user may not).
ADMIN_ACL = (
    f"user default off resetkeys resetchannels -@all\nuser {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n"
)


def parse_config_file(text: str) -> list[tuple[str, str]]:
    """A rendered configuration file back into (directive, value) pairs; each line must hold exactly two."""
    pairs = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line)
        assert len(words) == 2, f"not one directive and one value: {line!r}"
        pairs.append((words[0], words[1]))
    return pairs


def parse_command(command: list[str]) -> list[tuple[str, str]]:
    """``server --directive value …`` back into pairs; every directive must have exactly one value."""
    args = command[1:] if command and not command[0].startswith("--") else command
    assert len(args) % 2 == 0, args
    pairs = list(zip(args[0::2], args[1::2], strict=True))
    for directive, value in pairs:
        assert directive.startswith("--") and not value.startswith("--"), (directive, value)
    return [(directive.removeprefix("--"), value) for directive, value in pairs]


def expected_config_get(directive: str, value: str) -> str:
    """What ``CONFIG GET directive`` answers for a setting given as ``value``."""
    if directive == "maxmemory":
        return str(maxmemory_bytes(value))
    if directive == "dir":
        return str(Path(value).resolve())
    return value


def config_get_all(client: redis.Redis, directives: list[str]) -> dict[str, str | None]:
    answer: dict[str, str | None] = {}
    for directive in directives:
        got = client.config_get(directive)
        answer[directive] = got.get(directive, "<missing>")
    return answer


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback (the one a default route would use), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # UDP: picks a source address, sends nothing
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


def redis_server_binary() -> str | None:
    """The system's redis-server (Redis 7.0 on the CI machines), or None."""
    return shutil.which("redis-server")


def valkey_binary() -> str:
    from omopfed.localservices.valkey import _binary

    return str(_binary())


def server_version(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()


@contextmanager
def running_server(
    binary: str, args: list[str], cwd: Path, port: int, **client_options: Any
) -> Iterator[redis.Redis]:
    """Run ``binary args`` and yield a client (the admin user unless ``client_options`` say otherwise) once
    it answers; the server is stopped afterwards."""
    log = cwd / "stdout.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    options: dict[str, Any] = {
        "host": "localhost" if client_options.get("ssl") else "127.0.0.1",
        "username": ADMIN_USER,
        "password": ADMIN_PASSWORD,
        "socket_timeout": 5,
        "decode_responses": True,
    }
    client = redis.Redis(port=port, **{**options, **client_options})

    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                server_log = cwd / "server.log"
                text = log.read_text(errors="replace") + (
                    server_log.read_text(errors="replace") if server_log.exists() else ""
                )
                raise AssertionError(f"{binary} exited during start-up: {text[-1500:]}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"{binary} did not answer within 20 s"
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def refused_by_broker(action: Any) -> bool:
    """True when ``action`` (a Redis call) was refused: NOPERM from the ACL, or the server refusing the
    command outright (DEBUG and MODULE are off in its configuration)."""
    try:
        action()
    except redis.exceptions.NoPermissionError:
        return True
    except redis.exceptions.ResponseError as exc:
        return "not allowed" in str(exc)
    return False
