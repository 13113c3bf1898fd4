"""The embedded servers really start on loopback, answer, and leave nothing behind."""

import subprocess
from pathlib import Path

import psycopg
import pytest
import redis

from omop.errors import OmopFedError, UsageError
from omopfed.broker_config import DEFAULT_MAXMEMORY, maxmemory_bytes
from omopfed.localservices import LocalServiceError, start_postgres, start_valkey
from omopfed.localservices.processes import pid_alive, wait_until
from tests.broker_checks import config_get_all, expected_config_get, parse_config_file


@pytest.mark.services
def test_embedded_postgres_starts_authenticates_and_cleans_up(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg")
    try:
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == ("127.0.0.1",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.url(password="wrong"), connect_timeout=5)
    finally:
        server.stop()
    assert not pid_alive(server.pid)
    assert not (tmp_path / "pg").exists()


@pytest.mark.services
@pytest.mark.parametrize("maxmemory", [None, "64mb"])
def test_embedded_valkey_has_broker_settings_and_cleans_up(tmp_path: Path, maxmemory: str | None) -> None:
    server = (
        start_valkey(tmp_path / "vk", maxmemory=maxmemory) if maxmemory else start_valkey(tmp_path / "vk")
    )
    try:
        settings = parse_config_file((tmp_path / "vk" / "valkey.conf").read_text())
        client = redis.Redis.from_url(server.url(), decode_responses=True)
        # no ACL file here: the default user reads every setting back
        assert config_get_all(client, [d for d, _ in settings]) == {
            d: expected_config_get(d, v) for d, v in settings
        }
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        assert client.config_get("port") == {"port": str(server.port)}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        size = maxmemory_bytes(maxmemory or DEFAULT_MAXMEMORY)
        assert client.config_get("maxmemory") == {"maxmemory": str(size)}
        assert client.config_get("enable-debug-command") == {"enable-debug-command": "no"}
        assert client.config_get("enable-module-command") == {"enable-module-command": "no"}
    finally:
        server.stop()
    assert not pid_alive(server.pid)
    assert not (tmp_path / "vk").exists()


def test_embedded_valkey_refuses_a_bad_memory_limit_before_starting(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--broker-maxmemory"):
        start_valkey(tmp_path / "vk", maxmemory="a lot")
    assert not (tmp_path / "vk").exists()


def test_wait_until_stops_as_soon_as_the_server_process_exits(tmp_path: Path) -> None:
    """A real server binary given an unusable option dies at once: the wait ends with its exit code instead
    of polling a dead server until the timeout (how long that takes is measured in the benchmarks)."""
    from omopfed.localservices.valkey import _binary

    conf = tmp_path / "bad.conf"
    conf.write_text("port 0\nno-such-directive yes\n")
    proc = subprocess.Popen([str(_binary()), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with pytest.raises(LocalServiceError) as info:
            wait_until(lambda: False, 600, "valkey-server", process=proc)
    finally:
        proc.wait(timeout=10)
    assert str(info.value) == "valkey-server exited during start-up (exit code 1)"


def test_a_check_that_says_waiting_is_pointless_ends_the_wait() -> None:
    def hopeless() -> bool:
        raise LocalServiceError("the server's data directory is gone")

    with pytest.raises(LocalServiceError, match="data directory is gone"):
        wait_until(hopeless, 600, "a server")


def test_wait_until_still_times_out_on_a_server_that_never_answers() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError  # what a server that is not listening yet looks like

    with pytest.raises(LocalServiceError, match=r"^a server did not become ready within 0 s$"):
        wait_until(refused, 0.2, "a server")


@pytest.mark.services
def test_embedded_valkey_that_dies_at_start_up_says_so_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(LocalServiceError) as info:
        start_valkey(tmp_path / "vk", aclfile=tmp_path / "missing.acl")
    message = str(info.value)
    assert message.startswith("embedded Valkey exited during start-up (exit code 1): ")
    assert "ACL" in message and "missing.acl" in message and "\n" not in message
    assert isinstance(info.value, OmopFedError)  # the CLI prints it as one line, no traceback


@pytest.mark.services
def test_embedded_postgres_given_an_unusable_setting_fails_with_its_reason(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg")
    server.stop(remove=False)
    with (tmp_path / "pg" / "pgdata" / "postgresql.conf").open("a") as conf:
        conf.write("\nno_such_setting = 1\n")
    try:
        with pytest.raises(LocalServiceError) as info:
            server.restart(detach=False)
    finally:
        server.stop()
    message = str(info.value)
    assert message.startswith("embedded PostgreSQL (restart) exited during start-up (exit code 1): ")
    assert 'unrecognized configuration parameter "no_such_setting"' in message and "\n" not in message
    assert not server.alive()
