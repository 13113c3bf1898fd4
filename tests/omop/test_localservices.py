"""The embedded servers really start on loopback, answer, and leave nothing behind."""

from pathlib import Path

import psycopg
import pytest
import redis

from omop.broker_config import DEFAULT_MAXMEMORY, maxmemory_bytes
from omop.errors import UsageError
from omop.localservices import start_postgres, start_valkey
from omop.localservices.processes import pid_alive
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
