"""Per-trust Redis users against a real Valkey server started with the generated ACL file."""

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from hub_broker.redis_acl import HUB_USER, password_file, trust_user, write_acl
from omopfed.localservices import EmbeddedValkey, free_port, start_valkey, stop_pid
from omopfed.localservices.processes import wait_until
from tests.broker_checks import refused_by_broker

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedValkey, Path]]:
    base = tmp_path_factory.mktemp("acl")
    acl = write_acl(base / "acl", ["a", "b"])
    hub_pw = password_file(base / "acl", HUB_USER).read_text().strip()
    server = start_valkey(
        base / "data", aclfile=acl, ping_url=f"redis://{HUB_USER}:{hub_pw}@127.0.0.1:{{port}}/0"
    )
    yield server, base / "acl"
    server.stop()


def _client(server: EmbeddedValkey, acl_dir: Path, user: str) -> redis.Redis:
    pw = password_file(acl_dir, user).read_text().strip()
    return redis.Redis.from_url(server.url(user, pw))


def test_trust_user_reaches_only_its_own_queue_and_can_only_push_its_own_results(
    acl_server: tuple[EmbeddedValkey, Path],
) -> None:
    server, acl_dir = acl_server
    a = _client(server, acl_dir, trust_user("a"))
    hub = _client(server, acl_dir, HUB_USER)
    hub.lpush("trust.b", "task-for-b")
    hub.lpush("trust.a", "task-for-a")
    hub.rpush("hub.results.b", "b's answer")
    assert a.brpop(["trust.a"], timeout=1) == (b"trust.a", b"task-for-a")
    forbidden: dict[str, Callable[[], object]] = {
        "read B's queue": lambda: a.lrange("trust.b", 0, -1),
        "pop B's queue": lambda: a.rpop("trust.b"),
        "push to B's queue": lambda: a.lpush("trust.b", "injected"),
        "block-pop B's queue": lambda: a.brpop(["trust.b"], timeout=1),
        "read own results": lambda: a.lrange("hub.results.a", 0, -1),
        "pop own results": lambda: a.lpop("hub.results.a"),
        "delete own results": lambda: a.delete("hub.results.a"),
        "overwrite own results with a string": lambda: a.set("hub.results.a", "x"),
        "left-push own results": lambda: a.lpush("hub.results.a", "pre-empt"),
        "push to B's results": lambda: a.rpush("hub.results.b", "forged"),
        "delete B's results": lambda: a.delete("hub.results.b"),
        "overwrite B's results": lambda: a.set("hub.results.b", "x"),
        "read B's unacked": lambda: a.hget("unacked.trust.b", "x"),
        "list keys": lambda: a.keys("*"),
        "scan keys": lambda: a.scan(0),
        "flush": lambda: a.flushall(),
        "read config": lambda: a.config_get("*"),
        "read ACLs": lambda: a.acl_list(),
        "pause every client": lambda: a.execute_command("CLIENT", "PAUSE", "8000", "ALL"),
        "kill other clients": lambda: a.execute_command("CLIENT", "KILL", "TYPE", "normal"),
        "list other clients": lambda: a.client_list(),
        "track other keys": lambda: a.execute_command("CLIENT", "TRACKING", "ON", "BCAST"),
        "run a script": lambda: a.eval("while true do end", 0),
        "load a script": lambda: a.script_load("return 1"),
        "run a loaded script": lambda: a.evalsha("0" * 40, 0),
        "call a function": lambda: a.execute_command("FCALL", "f", "0"),
        "debug": lambda: a.execute_command("DEBUG", "SLEEP", "1"),
        "monitor": lambda: a.execute_command("MONITOR"),
        "publish": lambda: a.publish("celeryev", "x"),
        "subscribe": lambda: a.execute_command("SUBSCRIBE", "x"),
        "shut the server down": lambda: a.execute_command("SHUTDOWN", "NOSAVE"),
    }
    allowed = [name for name, action in forbidden.items() if not refused_by_broker(action)]
    assert allowed == []
    assert a.rpush("hub.results.a", "answer") == 1  # the one write it may make outside its queue
    assert hub.lrange("trust.b", 0, -1) == [b"task-for-b"]  # B's queue untouched
    assert hub.lrange("hub.results.b", 0, -1) == [b"b's answer"]  # B's answers untouched
    assert hub.lrange("hub.results.a", 0, -1) == [b"answer"]
    assert hub.type("hub.results.a") == b"list"


def test_default_user_is_off_and_wrong_passwords_fail(acl_server: tuple[EmbeddedValkey, Path]) -> None:
    server, _ = acl_server
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(server.url()).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(server.url(trust_user("a"), "wrong")).ping()


def test_acl_file_holds_no_plaintext_password_and_rerun_keeps_passwords(
    acl_server: tuple[EmbeddedValkey, Path], tmp_path: Path
) -> None:
    _, acl_dir = acl_server
    pw = password_file(acl_dir, trust_user("a")).read_text().strip()
    assert pw not in (acl_dir / "users.acl").read_text()
    assert password_file(acl_dir, trust_user("a")).stat().st_mode & 0o077 == 0
    write_acl(tmp_path, ["a"])
    first = password_file(tmp_path, trust_user("a")).read_text()
    write_acl(tmp_path, ["a", "c"])
    assert password_file(tmp_path, trust_user("a")).read_text() == first
    assert "user trust-c " in (tmp_path / "users.acl").read_text()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary on this machine")
def test_acl_file_loads_in_the_machines_redis_too(tmp_path: Path) -> None:
    """Debian's Redis 7.0 refuses ACL rules for commands it does not know: the file must not name any."""
    acl = write_acl(tmp_path / "acl", ["a"])
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--aclfile",
            str(acl),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        pw = password_file(tmp_path / "acl", trust_user("a")).read_text().strip()
        client = redis.Redis(host="127.0.0.1", port=port, username=trust_user("a"), password=pw)
        wait_until(lambda: bool(client.ping()), 10, "redis-server with the generated ACL file")
        assert client.rpush("hub.results.a", "x") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.lrange("hub.results.a", 0, -1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.eval("return 1", 0)
    finally:
        stop_pid(proc.pid)
