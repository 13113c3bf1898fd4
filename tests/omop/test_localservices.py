"""The embedded servers really start on loopback, answer, and leave nothing behind."""

from pathlib import Path

import psycopg
import pytest
import redis

from omop.localservices import start_postgres, start_valkey
from omop.localservices.processes import pid_alive


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
def test_embedded_valkey_has_broker_settings_and_cleans_up(tmp_path: Path) -> None:
    server = start_valkey(tmp_path / "vk")
    try:
        client = redis.Redis.from_url(server.url())
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("bind")["bind"].startswith("127.0.0.1")
    finally:
        server.stop()
    assert not pid_alive(server.pid)
    assert not (tmp_path / "vk").exists()
