"""Accounts of the hub service: tokens, names and authorization decisions (pure), then the store's tables
(a real SQLite hub store in a temporary directory)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hub_broker.accounts import (
    Accounts,
    Researcher,
    bearer_token,
    can_see,
    can_submit,
    check_project_id,
    check_user_name,
    first_sql_line,
    hash_token,
    new_token,
    token_matches,
)
from hub_broker.store import HubStore, User, utcnow
from omop.errors import UsageError


def _researcher(
    user_id: int = 1, *, admin: bool = False, disabled: bool = False, projects: tuple[str, ...] = ("p1",)
) -> Researcher:
    return Researcher(user_id, f"u{user_id}", admin, disabled, frozenset(projects))


def test_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) >= 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_hash_is_sha256_hex_and_only_the_right_token_matches() -> None:
    token = new_token()
    stored = hash_token(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest() and len(stored) == 64
    assert token not in stored
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)
    assert not token_matches(new_token(), stored)
    assert not token_matches(token, "")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("Bearer a b", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_names_and_project_ids_are_checked() -> None:
    assert check_user_name("alice.smith@trust-1") == "alice.smith@trust-1"
    assert check_project_id("gi-bleed") == "gi-bleed"
    for bad in ("", "-x", "a b", "x" * 65, "a;b"):
        with pytest.raises(UsageError):
            check_user_name(bad)
        with pytest.raises(UsageError):
            check_project_id(bad)


def test_members_submit_only_for_their_projects_and_admins_are_no_exception() -> None:
    assert can_submit(_researcher(projects=("p1", "p2")), "p2")
    assert not can_submit(_researcher(projects=("p1",)), "p2")
    assert not can_submit(_researcher(admin=True, projects=()), "p1")
    assert not can_submit(_researcher(disabled=True, projects=("p1",)), "p1")


def test_researchers_see_their_own_queries_and_admins_see_all() -> None:
    alice, bob, admin = _researcher(1), _researcher(2), _researcher(3, admin=True)
    assert can_see(alice, 1)
    assert not can_see(bob, 1)
    assert not can_see(alice, None)
    assert can_see(admin, 1) and can_see(admin, None)
    assert not can_see(_researcher(1, disabled=True), 1)


def test_first_sql_line() -> None:
    assert first_sql_line("\n  SELECT person_id\nFROM person") == "SELECT person_id"
    assert first_sql_line("   ") == ""


def _accounts(tmp_path: Path) -> Accounts:
    return Accounts(HubStore(f"sqlite:///{tmp_path / 'hub.db'}"))


def test_a_user_authenticates_with_their_token_until_disabled(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    token = accounts.add_user("alice")
    accounts.add_project("p1")
    accounts.add_member("p1", "alice")
    who = accounts.authenticate(token)
    assert who is not None and who.name == "alice" and who.projects == frozenset({"p1"})
    assert not who.is_admin
    assert accounts.authenticate(token[:-1]) is None
    assert accounts.authenticate("") is None and accounts.authenticate(None) is None
    accounts.disable_user("alice")
    assert accounts.authenticate(token) is None
    assert [u.disabled for u in accounts.users()] == [True]


def test_the_store_keeps_only_the_hash(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    token = accounts.add_user("alice", admin=True)
    with accounts.store.session() as s:
        user = s.scalars(select(User)).one()
        assert user.token_hash == hash_token(token) and user.is_admin
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))  # the database and its WAL
    assert hash_token(token).encode() in on_disk
    assert token.encode() not in on_disk


def test_bad_account_commands_are_usage_errors(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    accounts.add_user("alice")
    accounts.add_project("p1")
    with pytest.raises(UsageError, match="exists already"):
        accounts.add_user("alice")
    with pytest.raises(UsageError, match="exists already"):
        accounts.add_project("p1")
    with pytest.raises(UsageError, match="no user"):
        accounts.disable_user("bob")
    with pytest.raises(UsageError, match="no user"):
        accounts.add_member("p1", "bob")
    with pytest.raises(UsageError, match="no project"):
        accounts.add_member("p2", "alice")
    accounts.add_member("p1", "alice")
    with pytest.raises(UsageError, match="already"):
        accounts.add_member("p1", "alice")
    assert accounts.projects()[0][0] == "p1" and accounts.projects()[0][2] == ("alice",)


def test_query_lists_show_own_queries_and_admins_all(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    alice = accounts.authenticate(accounts.add_user("alice"))
    bob = accounts.authenticate(accounts.add_user("bob"))
    admin = accounts.authenticate(accounts.add_user("root", admin=True))
    assert alice is not None and bob is not None and admin is not None
    deadline = utcnow() + timedelta(minutes=5)
    for i, owner in enumerate([alice.user_id, bob.user_id, alice.user_id, None]):
        accounts.store.create_query(
            query_id=f"q{i}",
            project_id="p1",
            sql=f"SELECT person_id\nFROM person -- {i}",
            trusts=["t1"],
            threshold=10,
            deadline_at=deadline,
            submitted_by=owner,
        )
    mine = accounts.queries_of(alice, limit=10, offset=0)
    assert {q.query_id for q in mine} == {"q0", "q2"}
    assert all(q.sql == "SELECT person_id" and q.submitted_by == "alice" for q in mine)
    assert [q.query_id for q in accounts.queries_of(bob, limit=10, offset=0)] == ["q1"]
    everything = accounts.queries_of(admin, limit=10, offset=0)
    assert {q.query_id for q in everything} == {"q0", "q1", "q2", "q3"}
    assert len(accounts.queries_of(admin, limit=2, offset=0)) == 2
    assert len(accounts.queries_of(admin, limit=10, offset=3)) == 1
    assert accounts.owner_of("q1") == bob.user_id and accounts.owner_of("q3") is None


def test_the_service_parses_bodies_and_limits_their_size_without_a_server(tmp_path: Path) -> None:
    from hub_broker.service import HubService
    from hub_broker.settings import HubSettings
    from omop.errors import RequestRefused as Refusal

    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    service = HubService(
        HubSettings(hub_store_url=store.url, hub_keys_dir=tmp_path), store, max_body_bytes=100
    )
    body = service.parse_submission(b'{"sql": "SELECT person_id FROM person", "project": "p1"}')
    assert body.project == "p1" and body.trusts is None and body.numeric is None
    for raw, status in ((b"x" * 101, 413), (b"[]", 400), (b'{"sql": "", "project": "p"}', 400)):
        with pytest.raises(Refusal) as refused:
            service.parse_submission(raw)
        assert refused.value.status == status
    service.check_size("100")
    with pytest.raises(Refusal) as refused:
        service.check_size("101")
    assert refused.value.status == 413
    with pytest.raises(Refusal) as refused:
        service.authenticate("Bearer " + new_token())
    assert refused.value.status == 401
    token = Accounts(store).add_user("alice")
    who = service.authenticate(f"Bearer {token}")
    with pytest.raises(Refusal) as refused:  # not a member: refused before anything is checked or recorded
        service.submit(who, body)
    assert refused.value.status == 403 and store.count_queries() == 0
