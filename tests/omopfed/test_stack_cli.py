"""``omopfed stack up | info | down`` as a user runs them, including the mistakes a user makes."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import redis

from omopfed import compose as spec
from omopfed.broker_config import DEPLOYMENT_DIRECTIVES, maxmemory_bytes
from omopfed.localservices.processes import pid_alive
from tests.broker_checks import parse_command, parse_config_file
from tests.cli_runner import assert_no_traceback, assert_one_line_error, run_omopfed

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.stack]


def test_up_info_down_round_trip(tmp_path: Path) -> None:
    directory = tmp_path / "fed"
    sizes = ["--trusts", "2", "--persons", "60", "--broker-maxmemory", "64mb"]
    up = run_omopfed("stack", "up", "--dir", directory, *sizes, timeout=300)
    assert_no_traceback(up)
    assert up.returncode == 0, up.stderr
    try:
        info = json.loads(run_omopfed("stack", "info", "--dir", directory, "--json").stdout)
        assert info["redis_url"].startswith("redis://hub:")
        _check_broker_settings(directory, info["redis_url"], "64mb")
        assert set(info["trusts"]) == {"t1", "t2"}
        for trust_id, trust in info["trusts"].items():
            with psycopg.connect(trust["db_url"]) as conn:
                assert conn.execute("SELECT count(*) FROM omop.person").fetchone() == (60,)
            assert pid_alive(trust["worker_pid"])
            # the default is dp: every trust's policy says so, and nobody else can read it
            policy = directory / "trusts" / trust_id / "policy.toml"
            assert 'mode = "dp"' in policy.read_text() and policy.stat().st_mode & 0o077 == 0
        assert (directory / "stack.json").stat().st_mode & 0o077 == 0
        again = run_omopfed("stack", "up", "--dir", directory)
        assert_one_line_error(again, 2, "already exists")
    finally:
        down = run_omopfed("stack", "down", "--dir", directory)
    assert down.returncode == 0, down.stderr
    assert not directory.exists()
    assert not any(pid_alive(t["worker_pid"]) for t in info["trusts"].values())
    assert not pid_alive(info["reducer_pid"])


def _check_broker_settings(directory: Path, hub_url: str, maxmemory: str) -> None:
    """The running broker has the memory limit and the settings compose gives its broker too."""
    hub = redis.Redis.from_url(hub_url, decode_responses=True)
    memory = hub.info("memory")  # the hub's ACL user may not run CONFIG GET, but may run INFO
    assert memory["maxmemory"] == maxmemory_bytes(maxmemory)
    assert memory["maxmemory_policy"] == "noeviction"
    assert hub.info("persistence")["aof_enabled"] == 1
    local = parse_config_file((directory / "redis" / "data" / "valkey.conf").read_text())
    compose = parse_command(
        spec.compose_config(["t1", "t2"], broker_maxmemory=maxmemory)["services"]["redis"]["command"]
    )

    def shared(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(d, v) for d, v in pairs if d not in DEPLOYMENT_DIRECTIVES | {"aclfile"}]

    assert shared(local) == shared(compose)
    assert dict(local)["maxmemory"] == maxmemory and dict(local)["bind"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["stack", "up", "--trusts", "0"], 2, "--trusts"),
        (["stack", "up", "--broker-maxmemory", "plenty"], 2, "--broker-maxmemory must be a size"),
        (["stack", "up", "--broker-maxmemory", "1mb"], 2, "--broker-maxmemory 1mb is too small"),
        (["stack", "up", "--broker-maxmemory", "0.5gb"], 2, "--broker-maxmemory must be a size"),
        (["stack", "up", "--trusts", "2", "--persons", "-5"], 2, "--persons"),
        (["stack", "up", "--privacy", "fuzzy"], 2, '--privacy must be "dp" or "exact"'),
        (["stack", "up", "--privacy", "exact", "--epsilon", "1"], 2, "--epsilon and --budget apply to"),
        (["stack", "up", "--epsilon", "0"], 2, "--epsilon: Input should be greater than 0"),
        (["stack", "up", "--epsilon", "nan"], 2, "--epsilon"),
        (["stack", "up", "--epsilon", "2", "--budget", "1"], 2, "cannot pay for one query"),
        (["stack", "info"], 2, "no stack"),
        (["stack", "down"], 2, "no stack"),
    ],
)
def test_bad_stack_commands(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    proc = run_omopfed(*args, "--dir", tmp_path / "nothing-here")
    assert_one_line_error(proc, code, needle)
    assert not (tmp_path / "nothing-here").exists()


def test_up_refuses_a_directory_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = run_omopfed("stack", "up", "--dir", tmp_path)
    assert_one_line_error(proc, 2, "not empty")
    assert (tmp_path / "precious.txt").read_text() == "keep me"
