"""``omopfed keys`` as an operator runs it: a real subprocess, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from omop.keys import HUB_PUBLIC, load_hub_private, load_pinned_hub, load_trust_registry
from tests.cli_runner import assert_no_traceback, run_omopfed


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_omopfed("keys", *args, cwd=cwd, timeout=60)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert proc.returncode == code, proc
    assert_no_traceback(proc)
    for fragment in fragments:
        assert fragment in proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_onboarding_flow(tmp_path: Path) -> None:
    hub = run("hub", "--out", "hub", cwd=tmp_path)
    assert hub.returncode == 0, hub.stderr
    trust = run("trust", "north", "--out", "north", cwd=tmp_path)
    assert trust.returncode == 0, trust.stderr
    assert mode(tmp_path / "hub") == 0o700
    assert mode(tmp_path / "hub" / "hub_signing.key") == 0o600
    assert mode(tmp_path / "north" / "trust_north.key") == 0o600

    hub_pub = json.loads((tmp_path / "hub" / HUB_PUBLIC).read_text())
    assert hub_pub["signing_key_id"] in hub.stdout and hub_pub["encryption_key_id"] in hub.stdout
    trust_pub = json.loads((tmp_path / "north" / "trust_north.pub.json").read_text())
    assert trust_pub["key_id"] in trust.stdout

    reg = run("register-trust", "--hub-dir", "hub", "north/trust_north.pub.json", cwd=tmp_path)
    assert reg.returncode == 0 and "registered" in reg.stdout and trust_pub["key_id"] in reg.stdout
    again = run("register-trust", "--hub-dir", "hub", "north/trust_north.pub.json", cwd=tmp_path)
    assert again.returncode == 0 and "already registered" in again.stdout
    pin = run("pin-hub", "--trust-dir", "north", "hub/hub.pub.json", cwd=tmp_path)
    assert pin.returncode == 0 and hub_pub["signing_key_id"] in pin.stdout

    assert list(load_trust_registry(tmp_path / "hub")) == ["north"]
    assert load_pinned_hub(tmp_path / "north").signing_key_id == hub_pub["signing_key_id"]

    listing = run("list", "--dir", "hub", cwd=tmp_path)
    assert listing.returncode == 0
    for needle in ("hub_signing.key", "hub_encryption.key", "trusts/north.pub.json", trust_pub["key_id"]):
        assert needle in listing.stdout
    secret_line = (tmp_path / "hub" / "hub_signing.key").read_text().splitlines()[1]
    everything = "".join(p.stdout + p.stderr for p in (hub, trust, reg, again, pin, listing))
    assert secret_line not in everything
    assert "PRIVATE KEY" not in everything


def test_refuses_overwrite_without_force(tmp_path: Path) -> None:
    assert run("hub", "--out", "hub", cwd=tmp_path).returncode == 0
    before = load_hub_private(tmp_path / "hub").public().signing_key_id
    proc = run("hub", "--out", "hub", cwd=tmp_path)
    assert_clean_failure(proc, 1, "refusing to overwrite", "--force")
    assert load_hub_private(tmp_path / "hub").public().signing_key_id == before
    forced = run("hub", "--out", "hub", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert load_hub_private(tmp_path / "hub").public().signing_key_id != before


def test_open_private_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    assert run("trust", "north", "--out", "north", cwd=tmp_path).returncode == 0
    key = tmp_path / "north" / "trust_north.key"
    key.chmod(0o644)
    proc = run("list", "--dir", "north", cwd=tmp_path)
    assert proc.returncode == 1
    assert "chmod 600 north/trust_north.key" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_register_conflict_needs_replace(tmp_path: Path) -> None:
    assert run("hub", "--out", "hub", cwd=tmp_path).returncode == 0
    assert run("trust", "north", "--out", "a", cwd=tmp_path).returncode == 0
    assert run("trust", "north", "--out", "b", cwd=tmp_path).returncode == 0
    assert run("register-trust", "--hub-dir", "hub", "a/trust_north.pub.json", cwd=tmp_path).returncode == 0
    proc = run("register-trust", "--hub-dir", "hub", "b/trust_north.pub.json", cwd=tmp_path)
    assert_clean_failure(proc, 1, "different key", "--replace")
    replaced = run("register-trust", "--hub-dir", "hub", "b/trust_north.pub.json", "--replace", cwd=tmp_path)
    assert replaced.returncode == 0 and "replaced" in replaced.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("trust", "Not/Valid", "--out", "x"), 2, "invalid trust id"),
        (("register-trust", "--hub-dir", "hub", "missing.pub.json"), 1, "cannot read key file missing"),
        (("pin-hub", "--trust-dir", "t", "garbage.json"), 1, "not a JSON public key file"),
        (("list", "--dir", "nowhere"), 1, "key directory not found"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    tmp_path: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "garbage.json").write_text("not json")
    proc = run(*args, cwd=tmp_path)
    assert_clean_failure(proc, code, fragment)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_option_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    proc = run("hub", cwd=tmp_path)
    assert_clean_failure(proc, 2, "--out")
