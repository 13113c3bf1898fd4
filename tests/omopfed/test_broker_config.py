"""The broker's settings: one generator, rendered as a config file and as a command line, read back from real
servers (the embedded Valkey, and the system's Redis 7.0 when it is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from omop.errors import UsageError
from omopfed import compose as spec
from omopfed.broker_config import (
    DEFAULT_MAXMEMORY,
    DEPLOYMENT_DIRECTIVES,
    BrokerTls,
    broker_settings,
    command_args,
    config_file,
    maxmemory_bytes,
    parse_maxmemory,
)
from omopfed.localservices.processes import free_port
from omopfed.localservices.valkey import _config_text
from tests.broker_checks import (
    ADMIN_ACL,
    ADMIN_PASSWORD,
    ADMIN_USER,
    config_get_all,
    expected_config_get,
    non_loopback_address,
    parse_command,
    parse_config_file,
    redis_server_binary,
    running_server,
    server_version,
    valkey_binary,
)

REQUIRED = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
    "maxmemory": DEFAULT_MAXMEMORY,
    "maxmemory-policy": "noeviction",
    "protected-mode": "yes",
    "enable-protected-configs": "no",
    "enable-debug-command": "no",
    "enable-module-command": "no",
    "daemonize": "no",
}


# -- the memory limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical", "size"),
    [
        ("256mb", "256mb", 256 * 1024**2),
        ("2GB", "2gb", 2 * 1024**3),
        (" 512Mb ", "512mb", 512 * 1024**2),
        ("100m", "100m", 100 * 1000**2),
        ("1g", "1g", 1000**3),
        ("65536kb", "65536kb", 64 * 1024**2),
        ("268435456", "268435456", 256 * 1024**2),
        ("1024gb", "1024gb", 1024**4),
    ],
)
def test_memory_sizes_are_spelled_as_the_server_reads_them(given: str, canonical: str, size: int) -> None:
    assert parse_maxmemory(given) == canonical
    assert maxmemory_bytes(given) == size


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "must be a size such as 256mb"),
        ("lots", "must be a size such as 256mb"),
        ("-1gb", "must be a size such as 256mb"),
        ("1.5gb", "must be a size such as 256mb"),
        ("256 mb", "must be a size such as 256mb"),
        ("256tb", "must be a size such as 256mb"),
        ("256mb\nsave 60 1", "must be a size such as 256mb"),
        ("0", "too small"),
        ("16mb", "too small"),
        ("33554431", "too small"),
        ("1025gb", "too large"),
        ("99999999999999999999999gb", "too large"),
    ],
)
def test_nonsense_memory_sizes_are_one_line_usage_errors(given: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_maxmemory(given)
    assert caught.value.exit_code == 2
    text = str(caught.value)
    assert message in text and "--broker-maxmemory" in text and "\n" not in text
    with pytest.raises(UsageError):
        broker_settings(aclfile=None, data_dir="/data", maxmemory=given)


# -- the settings and their two renderings ---------------------------------------------------------------


def test_every_broker_setting_is_there_once() -> None:
    settings = broker_settings(aclfile="/etc/valkey/users.acl", data_dir="/data")
    directives = [d for d, _ in settings]
    assert len(directives) == len(set(directives))
    values = dict(settings)
    assert {d: values[d] for d in REQUIRED} == REQUIRED
    assert values["aclfile"] == "/etc/valkey/users.acl"
    assert "bind" not in values and "logfile" not in values  # a container: every interface, stdout


SAMPLES = {
    "embedded": broker_settings(
        aclfile="/tmp/stack/redis/acl/users.acl",
        data_dir="/tmp/stack/redis/data",
        port=40123,
        bind="127.0.0.1",
        logfile="server.log",
        maxmemory="64mb",
    ),
    "compose": broker_settings(aclfile="/etc/valkey/users.acl", data_dir="/data"),
    "tls": broker_settings(
        aclfile="/etc/valkey/users.acl",
        data_dir="/data",
        tls=BrokerTls("/run/secrets/a.crt", "/run/secrets/a.key", "/run/secrets/ca.crt"),
    ),
    "odd paths": broker_settings(
        aclfile='/srv/my "fed"/users.acl', data_dir="/srv/fed data\\x", logfile="", maxmemory="2GB"
    ),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_file_and_command_line_carry_the_same_pairs(name: str) -> None:
    settings = SAMPLES[name]
    assert parse_config_file(config_file(settings)) == settings
    assert parse_command(command_args(settings)) == settings


def test_compose_and_stack_up_differ_only_in_where_the_server_listens_and_writes(tmp_path: Path) -> None:
    """The compose command line and the embedded server's file, both read back: the same directives in the
    same order with the same values, apart from listening, files and the ACL file's path."""
    local = parse_config_file(_config_text(40123, tmp_path, tmp_path / "users.acl", "512mb"))
    doc = spec.compose_config(["t1", "t2"], broker_maxmemory="512mb")
    compose = parse_command(doc["services"]["redis"]["command"])
    tls = parse_command(
        spec.tls_override_config(["t1", "t2"], broker_maxmemory="512mb")["services"]["redis"]["command"]
    )

    def shared(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(d, "<path>" if d == "aclfile" else v) for d, v in pairs if d not in DEPLOYMENT_DIRECTIVES]

    assert shared(local) == shared(compose) == shared(tls)
    assert dict(compose)["maxmemory"] == "512mb"
    assert {d for d, _ in local} - {d for d, _ in compose} == {"bind", "logfile"}
    assert dict(local)["bind"] == "127.0.0.1"
    assert dict(tls)["port"] == "0" and dict(tls)["tls-port"] == "6379"


def test_checked_in_compose_files_carry_the_default_settings() -> None:
    import yaml

    repo = Path(__file__).resolve().parents[2]
    for name in (spec.COMPOSE_FILE, spec.TLS_OVERRIDE_FILE):
        doc = yaml.safe_load((repo / name).read_text())
        values = dict(parse_command(doc["services"]["redis"]["command"]))
        assert {d: values[d] for d in REQUIRED} == REQUIRED, name


# -- real servers ----------------------------------------------------------------------------------------


def _binaries() -> list[object]:
    found = redis_server_binary()
    return [
        pytest.param(valkey_binary(), id="valkey"),
        pytest.param(
            found or "redis-server",
            id="redis",
            marks=pytest.mark.skipif(found is None, reason="no redis-server on PATH"),
        ),
    ]


def _check_reports_each_setting(client: redis.Redis, settings: list[tuple[str, str]]) -> None:
    reported = config_get_all(client, [d for d, _ in settings])
    assert reported == {d: expected_config_get(d, v) for d, v in settings}


def _check_admin_surface_closed(client: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
        client.execute_command("DEBUG", "SLEEP", "0")
    with pytest.raises(redis.ResponseError, match="MODULE command not allowed"):
        client.execute_command("MODULE", "LOAD", "/nonexistent/module.so")
    with pytest.raises(redis.ResponseError, match="protected config"):
        client.config_set("dir", "/tmp")


@pytest.mark.services
@pytest.mark.parametrize("binary", _binaries())
def test_config_file_starts_a_server_that_reports_each_setting(binary: str, tmp_path: Path) -> None:
    data = tmp_path / 'data "dir" with spaces'  # the file quotes what needs quoting
    data.mkdir()
    acl = tmp_path / "users.acl"
    acl.write_text(ADMIN_ACL)
    port = free_port()
    settings = broker_settings(
        aclfile=str(acl),
        data_dir=str(data),
        maxmemory="64mb",
        port=port,
        bind="127.0.0.1",
        logfile="server.log",
    )
    conf = tmp_path / "broker.conf"
    conf.write_text(config_file(settings))
    with running_server(binary, [str(conf)], data, port) as client:
        _check_reports_each_setting(client, settings)
        _check_admin_surface_closed(client)
        with pytest.raises(redis.AuthenticationError):  # the default user is off
            redis.Redis(port=port, socket_timeout=5).ping()
    assert (data / "server.log").is_file(), server_version(binary)


def _local_compose_command(command: list[str], replace: dict[str, str]) -> list[str]:
    """The compose command with container paths and the port replaced by local ones."""
    pairs = [(d, replace.get(d, v)) for d, v in parse_command(command)]
    return command_args(pairs)


@pytest.mark.services
@pytest.mark.parametrize("binary", _binaries())
def test_compose_command_line_starts_a_server_that_reports_each_setting(binary: str, tmp_path: Path) -> None:
    acl = tmp_path / "users.acl"
    acl.write_text(ADMIN_ACL)
    port = free_port()
    command = spec.compose_config(["t1"], broker_maxmemory="100m")["services"]["redis"]["command"]
    args = _local_compose_command(command, {"port": str(port), "dir": str(tmp_path), "aclfile": str(acl)})
    with running_server(binary, args, tmp_path, port) as client:
        _check_reports_each_setting(client, parse_command(args))
        assert client.config_get("maxmemory") == {"maxmemory": "100000000"}
        _check_admin_surface_closed(client)
        # every interface, protected mode on: ACL users still log in from another host's address
        address = non_loopback_address()
        if address is not None:
            remote = redis.Redis(host=address, port=port, username=ADMIN_USER, password=ADMIN_PASSWORD)
            assert remote.ping() is True
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(host=address, port=port, socket_timeout=5).ping()


@pytest.mark.services
@pytest.mark.parametrize("binary", _binaries())
def test_protected_mode_refuses_remote_clients_when_the_default_user_needs_no_password(
    binary: str, tmp_path: Path
) -> None:
    """The backstop: without the ACL file's `default off`, only loopback clients get in."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    port = free_port()
    settings = broker_settings(aclfile=None, data_dir=str(tmp_path), port=port)
    conf = tmp_path / "broker.conf"
    conf.write_text(config_file(settings))
    with running_server(binary, [str(conf)], tmp_path, port, username=None, password=None) as local:
        assert local.ping() is True
        with pytest.raises(redis.ResponseError, match=r"^DENIED .*protected mode"):
            redis.Redis(host=address, port=port, socket_timeout=5).ping()


@pytest.mark.services
def test_compose_tls_command_line_starts_a_tls_server(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from omopfed.compose_secrets import generate

    binary = next(
        (
            b
            for b in (valkey_binary(), redis_server_binary())
            if b and "libssl" in subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        ),
        None,
    )
    if binary is None or shutil.which("ldd") is None:
        pytest.skip("no valkey-server/redis-server built with TLS")
    generate(tmp_path, ["t1"], tls=True)
    tls = tmp_path / "federation" / "tls"
    acl = tmp_path / "users.acl"
    acl.write_text(ADMIN_ACL)
    port = free_port()
    command = spec.tls_override_config(["t1"])["services"]["redis"]["command"]
    local = {
        "tls-port": str(port),
        "tls-cert-file": str(tls / "redis.crt"),
        "tls-key-file": str(tls / "redis.key"),
        "tls-ca-cert-file": str(tls / "ca.crt"),
        "dir": str(tmp_path),
        "aclfile": str(acl),
    }
    args = _local_compose_command(command, local)
    options = {"ssl": True, "ssl_ca_certs": str(tls / "ca.crt"), "ssl_cert_reqs": "required"}
    with running_server(binary, args, tmp_path, port, **options) as client:
        _check_reports_each_setting(client, parse_command(args))


@pytest.mark.services
@pytest.mark.parametrize("binary", _binaries())
def test_a_full_broker_refuses_writes_and_evicts_nothing(binary: str, tmp_path: Path) -> None:
    """What docs/deploy-hub.md promises at maxmemory: new messages are refused with an OOM error, queued
    ones stay and can still be consumed, and writes work again once there is room."""
    acl = tmp_path / "users.acl"
    acl.write_text(ADMIN_ACL)
    port = free_port()
    settings = broker_settings(aclfile=str(acl), data_dir=str(tmp_path), maxmemory="32mb", port=port)
    conf = tmp_path / "broker.conf"
    conf.write_text(config_file(settings))
    with running_server(binary, [str(conf)], tmp_path, port) as client:
        client.lpush("trust.t1", "task-1", "task-2")
        # A small command that allocates 40 MiB: admitted below the limit, it leaves the server above it.
        client.setrange("ballast", 40 * 1024**2, "x")
        with pytest.raises(redis.OutOfMemoryError, match="maxmemory"):
            client.lpush("trust.t1", "task-3")
        with pytest.raises(redis.OutOfMemoryError, match="maxmemory"):
            client.lpush("hub.results", "answer")
        assert client.lrange("trust.t1", 0, -1) == ["task-2", "task-1"]  # nothing evicted
        assert client.exists("ballast")
        assert client.rpop("trust.t1") == "task-1"  # consumers still drain the queue
        client.delete("ballast")
        assert client.lpush("trust.t1", "task-3") == 2
