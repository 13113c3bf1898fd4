"""``omopfed hub user ...`` and ``omopfed hub project ...`` as the operator runs them: real subprocesses on a
SQLite hub store in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub_broker.accounts import Accounts, hash_token
from hub_broker.store import HubStore
from tests.cli_runner import assert_no_traceback, assert_one_line_error, run_omopfed


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


def _ok(*args: str) -> str:
    proc = run_omopfed("hub", *args)
    assert proc.returncode == 0, proc.stderr
    assert_no_traceback(proc)
    return proc.stdout


def test_user_add_prints_a_working_token_once(store_url: str) -> None:
    out = _ok("user", "add", "alice", "--json", "--store", store_url)
    assert out.count("\n") == 1
    added = json.loads(out)
    assert added["name"] == "alice" and added["is_admin"] is False
    token = added["token"]
    who = Accounts(HubStore(store_url)).authenticate(token)
    assert who is not None and who.name == "alice"
    plain = _ok("user", "add", "root", "--admin", "--store", store_url)
    admin = Accounts(HubStore(store_url)).authenticate(plain.strip())
    assert admin is not None and admin.is_admin
    listed = _ok("user", "list", "--json", "--store", store_url)
    assert token not in listed and hash_token(token) not in listed
    users = {u["name"]: u for u in json.loads(listed)}
    assert set(users) == {"alice", "root"} and users["root"]["is_admin"] and not users["alice"]["is_admin"]


def test_projects_members_and_disable(store_url: str) -> None:
    token = json.loads(_ok("user", "add", "alice", "--json", "--store", store_url))["token"]
    _ok("project", "add", "gi-bleed", "--store", store_url)
    _ok("project", "add-member", "gi-bleed", "alice", "--store", store_url)
    projects = json.loads(_ok("project", "list", "--json", "--store", store_url))
    assert [(p["project"], p["members"]) for p in projects] == [("gi-bleed", ["alice"])]
    assert "gi-bleed" in _ok("project", "list", "--store", store_url)
    who = Accounts(HubStore(store_url)).authenticate(token)
    assert who is not None and who.projects == frozenset({"gi-bleed"})
    _ok("user", "disable", "alice", "--store", store_url)
    assert Accounts(HubStore(store_url)).authenticate(token) is None
    assert json.loads(_ok("user", "list", "--json", "--store", store_url))[0]["disabled"] is True


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("user", "add", "bad name"), "not a user name"),
        (("user", "add", "alice"), "exists already"),
        (("user", "disable", "nobody"), "no user"),
        (("project", "add", "bad/id"), "not a project id"),
        (("project", "add-member", "nope", "alice"), "no project"),
        (("project", "add-member", "p1", "nobody"), "no user"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(store_url: str, args: tuple[str, ...], needle: str) -> None:
    _ok("user", "add", "alice", "--store", store_url)
    _ok("project", "add", "p1", "--store", store_url)
    assert_one_line_error(run_omopfed("hub", *args, "--store", store_url), 2, needle)
