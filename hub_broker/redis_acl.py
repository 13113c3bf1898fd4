"""Redis ACL users for a federation: one per trust (own queue only, push-only on its results key), the hub.

Passwords are generated once and kept in 0600 files next to the ACL file, which itself stores only their
SHA-256 (Redis ACL ``#<hash>`` syntax), so the ACL file is not a secret. Re-running with more trusts adds
users and keeps existing passwords. The ``default`` user is switched off: every client must log in.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from pathlib import Path

from omop.keys import PRIVATE_MODE, write_new_file
from omop.protocol import check_trust_id
from omop.transport import trust_acl_rules

HUB_USER = "hub"


def trust_user(trust_id: str) -> str:
    return f"trust-{trust_id}"


def _hashed(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_lines(trust_passwords: dict[str, str], hub_password: str) -> list[str]:
    """The ACL file's lines (pure). The hub may do anything but the dangerous commands."""
    lines = [
        "user default off resetkeys resetchannels -@all",
        f"user {HUB_USER} on {_hashed(hub_password)} ~* resetchannels +@all -@dangerous +info",
    ]
    for trust_id in sorted(trust_passwords):
        check_trust_id(trust_id)
        parts = [
            "user",
            trust_user(trust_id),
            "on",
            _hashed(trust_passwords[trust_id]),
            *trust_acl_rules(trust_id),
        ]
        lines.append(" ".join(parts))
    return lines


def password_file(out_dir: Path, user: str) -> Path:
    return out_dir / f"{user}.redis-password"


def _password(out_dir: Path, user: str) -> str:
    path = password_file(out_dir, user)
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    write_new_file(path, (password + "\n").encode(), PRIVATE_MODE)
    return password


def write_acl(out_dir: Path, trust_ids: Iterable[str]) -> Path:
    """Write ``users.acl`` and any missing password files into ``out_dir``; returns the ACL file path."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    trusts = {check_trust_id(t): _password(out_dir, trust_user(t)) for t in trust_ids}
    hub_password = _password(out_dir, HUB_USER)
    acl = out_dir / "users.acl"
    acl.write_text("\n".join(acl_lines(trusts, hub_password)) + "\n")
    acl.chmod(0o644)
    return acl
