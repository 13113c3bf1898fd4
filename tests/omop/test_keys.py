"""Key files: modes on disk, refusal of open or corrupt files, no silent overwrites, registration rules."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from omop.crypto import key_id, open_result, seal_result, sign_task, verify_task
from omop.errors import UsageError
from omop.keys import (
    HUB_ENCRYPTION_KEY,
    HUB_PUBLIC,
    HUB_SIGNING_KEY,
    KeyFileError,
    TrustPublicKey,
    describe_dir,
    generate_hub_keys,
    generate_trust_key,
    load_hub_private,
    load_hub_public,
    load_pinned_hub,
    load_private_key,
    load_trust_private,
    load_trust_public,
    load_trust_registry,
    pin_hub,
    register_trust,
    write_new_file,
)
from tests.omop.test_protocol import NOW, make_result, make_task


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    generate_hub_keys(tmp_path / "hub")
    return tmp_path / "hub"


@pytest.fixture
def trust_dir(tmp_path: Path) -> Path:
    generate_trust_key("north", tmp_path / "north")
    return tmp_path / "north"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- creation ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("permissive_umask")
def test_hub_files_and_modes_even_with_umask_zero(tmp_path: Path) -> None:
    out = tmp_path / "a" / "hub"
    public = generate_hub_keys(out)
    assert mode(out) == 0o700
    assert mode(out / HUB_SIGNING_KEY) == 0o600
    assert mode(out / HUB_ENCRYPTION_KEY) == 0o600
    assert mode(out / HUB_PUBLIC) == 0o644
    assert (out / HUB_SIGNING_KEY).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8 PEM
    doc = json.loads((out / HUB_PUBLIC).read_text())
    assert doc["signing_key_id"] == public.signing_key_id
    assert doc["encryption_key_id"] == public.encryption_key_id
    assert "PRIVATE" not in (out / HUB_PUBLIC).read_text()


def test_public_file_mode_is_exact_under_strict_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        generate_trust_key("north", tmp_path / "t")
    finally:
        os.umask(old)
    assert mode(tmp_path / "t" / "trust_north.pub.json") == 0o644
    assert mode(tmp_path / "t" / "trust_north.key") == 0o600


def test_existing_directory_is_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir(mode=0o755)
    (tmp_path / "keys").chmod(0o755)
    generate_trust_key("north", tmp_path / "keys")
    assert mode(tmp_path / "keys") == 0o755
    assert mode(tmp_path / "keys" / "trust_north.key") == 0o600


def test_no_overwrite_without_force(hub_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in hub_dir.iterdir() if p.is_file()}
    with pytest.raises(KeyFileError, match="--force"):
        generate_hub_keys(hub_dir)
    assert {p.name: p.read_bytes() for p in hub_dir.iterdir() if p.is_file()} == before


def test_force_replaces_keys_with_the_same_modes(hub_dir: Path) -> None:
    old = load_hub_private(hub_dir).public()
    new = generate_hub_keys(hub_dir, force=True)
    assert new.signing_key_id != old.signing_key_id
    assert load_hub_private(hub_dir).public().signing_key_id == new.signing_key_id
    assert mode(hub_dir / HUB_SIGNING_KEY) == 0o600 and mode(hub_dir / HUB_PUBLIC) == 0o644
    assert not [p for p in hub_dir.iterdir() if p.name.endswith(".tmp")]


def test_any_existing_target_stops_creation_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    out.mkdir()
    (out / HUB_PUBLIC).write_text("{}")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_hub_keys(out)
    assert not (out / HUB_SIGNING_KEY).exists()


def test_dangling_symlink_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "t"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.key"
    (out / "trust_north.key").symlink_to(elsewhere)
    with pytest.raises(KeyFileError):
        generate_trust_key("north", out)
    with pytest.raises(KeyFileError, match="already exists"):
        write_new_file(out / "trust_north.key", b"x", 0o600)
    assert not elsewhere.exists()


def test_invalid_trust_id_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid trust id"):
        generate_trust_key("../evil", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_out_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(KeyFileError, match="not a directory"):
        generate_hub_keys(tmp_path / "f")


# -- loading private keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_private_key_readable_by_others_is_refused(trust_dir: Path, bad_mode: int) -> None:
    path = trust_dir / "trust_north.key"
    path.chmod(bad_mode)
    with pytest.raises(KeyFileError) as info:
        load_trust_private(trust_dir, "north")
    message = str(info.value)
    assert f"chmod 600 {path}" in message and f"{bad_mode:04o}" in message
    assert "\n" not in message


@pytest.mark.parametrize("ok_mode", [0o600, 0o400])
def test_private_key_owner_only_is_accepted(trust_dir: Path, ok_mode: int) -> None:
    (trust_dir / "trust_north.key").chmod(ok_mode)
    key = load_trust_private(trust_dir, "north")
    assert key_id(key.public_key()) == load_trust_public(trust_dir / "trust_north.pub.json").key_id


def test_missing_private_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"cannot read key file .*nope.key: not found"):
        load_private_key(tmp_path / "nope.key")
    with pytest.raises(KeyFileError, match="not found"):
        load_hub_private(tmp_path / "no-such-dir")


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_corrupt_private_key(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    write_new_file(path, content, 0o600)
    with pytest.raises(KeyFileError, match="not a readable private key"):
        load_private_key(path)


def test_directory_instead_of_key(tmp_path: Path) -> None:
    (tmp_path / "d.key").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_private_key(tmp_path / "d.key")


def test_swapped_hub_key_files_are_refused(hub_dir: Path) -> None:
    signing, encryption = hub_dir / HUB_SIGNING_KEY, hub_dir / HUB_ENCRYPTION_KEY
    s, e = signing.read_bytes(), encryption.read_bytes()
    write_new_file(signing, e, 0o600, replace=True)
    write_new_file(encryption, s, 0o600, replace=True)
    with pytest.raises(KeyFileError, match="does not hold an Ed25519"):
        load_hub_private(hub_dir)


def test_hub_public_file_that_does_not_match_the_private_keys(hub_dir: Path, tmp_path: Path) -> None:
    generate_hub_keys(tmp_path / "other")
    (hub_dir / HUB_PUBLIC).unlink()
    write_new_file(hub_dir / HUB_PUBLIC, (tmp_path / "other" / HUB_PUBLIC).read_bytes(), 0o644)
    with pytest.raises(KeyFileError, match="does not match"):
        load_hub_private(hub_dir)


# -- public files --------------------------------------------------------------------------------------


def _edit_json(path: Path, **changes: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key_id": "0000000000000000"}, "does not match"),
        ({"signing_public_key": "AAAA"}, "not a valid public key"),
        ({"signing_public_key": "!!"}, "not a valid public key"),
        ({"kind": "something else"}, "not a file of kind"),
        ({"version": 2}, "unsupported version"),
        ({"trust_id": "Not Valid"}, "invalid trust id"),
        ({"trust_id": None}, "trust_id is missing"),
    ],
)
def test_damaged_trust_public_file(trust_dir: Path, changes: dict[str, object], message: str) -> None:
    path = trust_dir / "trust_north.pub.json"
    _edit_json(path, **changes)
    with pytest.raises(KeyFileError, match=message):
        load_trust_public(path)


def test_public_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "x.pub.json"
    path.write_bytes(b"\xff not json")
    with pytest.raises(KeyFileError, match="not a JSON public key file"):
        load_hub_public(path)


# -- registration and pinning --------------------------------------------------------------------------


def test_register_trust_then_load_registry(hub_dir: Path, trust_dir: Path) -> None:
    trust, outcome = register_trust(hub_dir, trust_dir / "trust_north.pub.json")
    assert outcome == "added"
    registry = load_trust_registry(hub_dir)
    assert list(registry) == ["north"]
    assert key_id(registry["north"]) == trust.key_id
    assert register_trust(hub_dir, trust_dir / "trust_north.pub.json")[1] == "unchanged"


def test_registry_is_empty_before_onboarding_but_hub_dir_must_exist(hub_dir: Path, tmp_path: Path) -> None:
    assert load_trust_registry(hub_dir) == {}
    with pytest.raises(KeyFileError, match="not found"):
        load_trust_registry(tmp_path / "missing")


def test_register_a_different_key_for_a_known_trust_needs_replace(
    hub_dir: Path, trust_dir: Path, tmp_path: Path
) -> None:
    register_trust(hub_dir, trust_dir / "trust_north.pub.json")
    impostor = generate_trust_key("north", tmp_path / "impostor")
    with pytest.raises(KeyFileError, match="--replace"):
        register_trust(hub_dir, tmp_path / "impostor" / "trust_north.pub.json")
    assert key_id(load_trust_registry(hub_dir)["north"]) != impostor.key_id
    assert (
        register_trust(hub_dir, tmp_path / "impostor" / "trust_north.pub.json", replace=True)[1] == "replaced"
    )
    assert key_id(load_trust_registry(hub_dir)["north"]) == impostor.key_id


def test_register_into_missing_hub_dir(trust_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="hub directory not found"):
        register_trust(tmp_path / "nohub", trust_dir / "trust_north.pub.json")


def test_registry_file_name_must_match_its_trust_id(hub_dir: Path, trust_dir: Path) -> None:
    register_trust(hub_dir, trust_dir / "trust_north.pub.json")
    (hub_dir / "trusts" / "north.pub.json").rename(hub_dir / "trusts" / "south.pub.json")
    with pytest.raises(KeyFileError, match="file name and trust id differ"):
        load_trust_registry(hub_dir)


def test_group_writable_registry_entry_is_refused_but_import_source_is_not(
    hub_dir: Path, trust_dir: Path
) -> None:
    source = trust_dir / "trust_north.pub.json"
    source.chmod(0o664)  # e.g. saved from mail under umask 002: fine to import, it is copied
    register_trust(hub_dir, source)
    entry = hub_dir / "trusts" / "north.pub.json"
    assert mode(entry) == 0o644
    entry.chmod(0o666)
    with pytest.raises(KeyFileError, match="chmod 644"):
        load_trust_registry(hub_dir)


def test_pin_hub_then_load(hub_dir: Path, trust_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="pin-hub"):
        load_pinned_hub(trust_dir)
    hub, outcome = pin_hub(trust_dir, hub_dir / HUB_PUBLIC)
    assert outcome == "added"
    pinned = load_pinned_hub(trust_dir)
    assert (pinned.signing_key_id, pinned.encryption_key_id) == (hub.signing_key_id, hub.encryption_key_id)
    assert pin_hub(trust_dir, hub_dir / HUB_PUBLIC)[1] == "unchanged"
    generate_hub_keys(tmp_path / "rogue")
    with pytest.raises(KeyFileError, match="--replace"):
        pin_hub(trust_dir, tmp_path / "rogue" / HUB_PUBLIC)
    assert load_pinned_hub(trust_dir).signing_key_id == hub.signing_key_id
    assert pin_hub(trust_dir, tmp_path / "rogue" / HUB_PUBLIC, replace=True)[1] == "replaced"
    assert load_pinned_hub(trust_dir).signing_key_id != hub.signing_key_id


def test_pin_refuses_a_trust_file_as_hub_file(trust_dir: Path) -> None:
    with pytest.raises(KeyFileError, match="not a file of kind"):
        pin_hub(trust_dir, trust_dir / "trust_north.pub.json")


# -- the loaded keys work together ---------------------------------------------------------------------


def test_loaded_keys_sign_verify_seal_open(hub_dir: Path, trust_dir: Path) -> None:
    register_trust(hub_dir, trust_dir / "trust_north.pub.json")
    pin_hub(trust_dir, hub_dir / HUB_PUBLIC)
    hub = load_hub_private(hub_dir)
    pinned = load_pinned_hub(trust_dir)
    task = make_task(trust_id="north")
    got = verify_task(
        sign_task(task, hub.signing),
        pinned.signing,
        expected_trust_id="north",
        now=NOW + timedelta(seconds=5),
    )
    assert got == task
    result = make_result(trust_id="north")
    envelope = seal_result(result, pinned.encryption, load_trust_private(trust_dir, "north"))
    opened = open_result(
        envelope, trust_verify_keys=load_trust_registry(hub_dir), hub_x25519_private=hub.encryption
    )
    assert opened == result


def test_describe_dir_shows_key_ids_and_problems_never_secrets(hub_dir: Path, trust_dir: Path) -> None:
    register_trust(hub_dir, trust_dir / "trust_north.pub.json")
    hub_entries = {e.path.name: e for e in describe_dir(hub_dir)}
    public = load_hub_public(hub_dir / HUB_PUBLIC)
    assert hub_entries[HUB_SIGNING_KEY].key_ids == public.signing_key_id
    assert hub_entries[HUB_ENCRYPTION_KEY].key_ids == public.encryption_key_id
    assert hub_entries["north.pub.json"].description == "registered trust north"
    (trust_dir / "trust_north.key").chmod(0o644)
    trust_entries = {e.path.name: e for e in describe_dir(trust_dir)}
    assert trust_entries["trust_north.key"].problem is not None
    assert "chmod 600" in trust_entries["trust_north.key"].problem
    pem = (hub_dir / HUB_SIGNING_KEY).read_text().splitlines()[1]
    assert all(pem not in repr(e) for e in describe_dir(hub_dir))


def test_trust_public_key_json_round_trip(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    original = TrustPublicKey("south", key)
    path = tmp_path / "south.pub.json"
    write_new_file(path, json.dumps(original.to_json()).encode(), 0o644)
    assert load_trust_public(path).key_id == original.key_id
