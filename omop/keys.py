"""Key files: creating, exchanging and loading the hub's and the trusts' keys.

Layout (see docs/keys.md for who holds what and how keys are exchanged at onboarding):

- hub directory: ``hub_signing.key`` (Ed25519, signs tasks), ``hub_encryption.key`` (X25519, results are
  encrypted to it), ``hub.pub.json`` (both public keys with their key ids: the one file a trust pins), and
  ``trusts/<id>.pub.json``, the registry of trust keys the hub accepts results from;
- trust directory: ``trust_<id>.key`` (Ed25519, signs results), ``trust_<id>.pub.json`` (what the trust
  sends to the hub operator) and ``hub.pub.json``, the pinned hub public keys.

Private keys are unencrypted PEM PKCS#8, created mode 0600 from the first byte (``os.open`` with
``O_CREAT | O_EXCL``), and refused at load time when group or others can access them. Public files are JSON
carrying raw keys in base64 plus their key ids; loading recomputes each key id, so a file damaged or edited
in transit is refused rather than trusted. Nothing here prints or logs key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from omop.crypto import key_id, raw_public_bytes
from omop.errors import KeyFileError as KeyFileError
from omop.errors import OmopFedError
from omop.protocol import check_trust_id
from omop.user_input import read_bytes

HUB_SIGNING_KEY = "hub_signing.key"
HUB_ENCRYPTION_KEY = "hub_encryption.key"
HUB_PUBLIC = "hub.pub.json"
TRUST_REGISTRY = "trusts"

HUB_PUBLIC_KIND = "omop-federation hub public keys"
TRUST_PUBLIC_KIND = "omop-federation trust public key"
FILE_FORMAT_VERSION = 1

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700
_MAX_KEY_FILE_BYTES = 64 * 1024

PrivateKey = Ed25519PrivateKey | X25519PrivateKey
Outcome = Literal["added", "unchanged", "replaced"]


def trust_private_name(trust_id: str) -> str:
    return f"trust_{check_trust_id(trust_id)}.key"


def trust_public_name(trust_id: str) -> str:
    return f"trust_{check_trust_id(trust_id)}.pub.json"


# -- public key sets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubPublicKeys:
    """What a trust pins: the key that signs tasks and the key results are encrypted to."""

    signing: Ed25519PublicKey
    encryption: X25519PublicKey

    @property
    def signing_key_id(self) -> str:
        return key_id(self.signing)

    @property
    def encryption_key_id(self) -> str:
        return key_id(self.encryption)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": HUB_PUBLIC_KIND,
            "version": FILE_FORMAT_VERSION,
            "signing_public_key": _b64(raw_public_bytes(self.signing)),
            "signing_key_id": self.signing_key_id,
            "encryption_public_key": _b64(raw_public_bytes(self.encryption)),
            "encryption_key_id": self.encryption_key_id,
        }


@dataclass(frozen=True)
class HubPrivateKeys:
    """The hub's two secrets."""

    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey

    def public(self) -> HubPublicKeys:
        return HubPublicKeys(self.signing.public_key(), self.encryption.public_key())


@dataclass(frozen=True)
class TrustPublicKey:
    """A trust's result-signing public key, as registered at the hub."""

    trust_id: str
    signing: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.signing)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": TRUST_PUBLIC_KIND,
            "version": FILE_FORMAT_VERSION,
            "trust_id": self.trust_id,
            "signing_public_key": _b64(raw_public_bytes(self.signing)),
            "key_id": self.key_id,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- writing -------------------------------------------------------------------------------------------


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a directory this creates gets mode 0700."""
    if path.exists():
        if not path.is_dir():
            raise KeyFileError(f"{path} exists and is not a directory")
        return path
    try:
        path.mkdir(parents=True, mode=DIR_MODE)
        path.chmod(DIR_MODE)  # mkdir's mode is filtered through the umask
    except OSError as exc:
        raise KeyFileError(f"cannot create directory {path}: {exc.strerror}") from None
    return path


def _write_all(fd: int, data: bytes, mode: int) -> None:
    try:
        os.fchmod(fd, mode)  # os.open's mode is filtered through the umask; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes, mode: int, *, replace: bool = False) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the moment it exists.

    Without ``replace`` an existing file is never touched. With ``replace`` the data goes to a fresh
    temporary file in the same directory (same mode) that is then renamed over ``path``, so readers see
    the old or the new content, never a mix, and never a moment of looser permissions.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        if not replace:
            _write_all(os.open(path, flags, mode), data, mode)
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            _write_all(fd, data, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None


def _refuse_existing(paths: list[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing and not force:
        raise KeyFileError(
            f"refusing to overwrite existing key file(s): {', '.join(existing)} (use --force to replace them)"
        )


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def generate_hub_keys(out_dir: Path, *, force: bool = False) -> HubPublicKeys:
    """Create the hub's signing and encryption keys and ``hub.pub.json`` in ``out_dir``."""
    ensure_dir(out_dir)
    targets = [out_dir / HUB_SIGNING_KEY, out_dir / HUB_ENCRYPTION_KEY, out_dir / HUB_PUBLIC]
    _refuse_existing(targets, force)
    keys = HubPrivateKeys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    write_new_file(targets[0], _private_pem(keys.signing), PRIVATE_MODE, replace=force)
    write_new_file(targets[1], _private_pem(keys.encryption), PRIVATE_MODE, replace=force)
    public = keys.public()
    write_new_file(targets[2], _public_json(public.to_json()), PUBLIC_MODE, replace=force)
    return public


def generate_trust_key(trust_id: str, out_dir: Path, *, force: bool = False) -> TrustPublicKey:
    """Create a trust's signing key ``trust_<id>.key`` and its public file ``trust_<id>.pub.json``."""
    check_trust_id(trust_id)
    ensure_dir(out_dir)
    targets = [out_dir / trust_private_name(trust_id), out_dir / trust_public_name(trust_id)]
    _refuse_existing(targets, force)
    private = Ed25519PrivateKey.generate()
    write_new_file(targets[0], _private_pem(private), PRIVATE_MODE, replace=force)
    public = TrustPublicKey(trust_id, private.public_key())
    write_new_file(targets[1], _public_json(public.to_json()), PUBLIC_MODE, replace=force)
    return public


def _install_public(target: Path, doc: dict[str, Any], same: bool, replace: bool, what: str) -> Outcome:
    if target.exists():
        if same:
            return "unchanged"
        if not replace:
            raise KeyFileError(f"{target} already holds a different {what}; use --replace to replace it")
        write_new_file(target, _public_json(doc), PUBLIC_MODE, replace=True)
        return "replaced"
    write_new_file(target, _public_json(doc), PUBLIC_MODE)
    return "added"


def register_trust(
    hub_dir: Path, public_file: Path, *, replace: bool = False
) -> tuple[TrustPublicKey, Outcome]:
    """Record a trust's public key (its ``trust_<id>.pub.json``) in the hub's registry."""
    trust = load_trust_public(public_file, check_mode=False)
    _require_dir(hub_dir, "hub directory")
    target = ensure_dir(hub_dir / TRUST_REGISTRY) / f"{trust.trust_id}.pub.json"
    same = target.exists() and load_trust_public(target).key_id == trust.key_id
    return trust, _install_public(target, trust.to_json(), same, replace, f"key for trust {trust.trust_id!r}")


def pin_hub(
    trust_dir: Path, hub_public_file: Path, *, replace: bool = False
) -> tuple[HubPublicKeys, Outcome]:
    """Pin the hub's public keys (its ``hub.pub.json``) at a trust."""
    hub = load_hub_public(hub_public_file, check_mode=False)
    ensure_dir(trust_dir)
    target = trust_dir / HUB_PUBLIC
    if target.exists():
        old = load_hub_public(target)
        same = (old.signing_key_id, old.encryption_key_id) == (hub.signing_key_id, hub.encryption_key_id)
    else:
        same = False
    return hub, _install_public(target, hub.to_json(), same, replace, "pinned hub key")


# -- loading -------------------------------------------------------------------------------------------


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise KeyFileError(f"{what} not found: {path}")


def _read_checked(path: Path, forbidden_bits: int, fix: str) -> bytes:
    """Read a small regular file, refusing it if its mode has any of ``forbidden_bits``."""
    return read_bytes(
        path,
        "key file",
        error=KeyFileError,
        max_bytes=_MAX_KEY_FILE_BYTES,
        regular_only=True,
        refuse_mode=forbidden_bits,
        fix=fix,
    )


def load_private_key(path: Path) -> PrivateKey:
    """Load an Ed25519 or X25519 private key written by this module.

    Refused with a one-line ``KeyFileError`` when missing, unreadable, not a key, or accessible by group or
    others (the message says to ``chmod 600`` it).
    """
    data = _read_checked(path, 0o077, "chmod 600")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(
            f"{path} is not a readable private key "
            "(expected an unencrypted PEM PKCS#8 key written by 'omopfed keys')"
        ) from None
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 or X25519 key")
    return key


def _load_ed25519(path: Path) -> Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 (signing) private key")
    return key


def _load_x25519(path: Path) -> X25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an X25519 (encryption) private key")
    return key


def load_hub_private(hub_dir: Path) -> HubPrivateKeys:
    """The hub's signing and encryption keys from ``hub_dir``."""
    _require_dir(hub_dir, "hub key directory")
    keys = HubPrivateKeys(
        _load_ed25519(hub_dir / HUB_SIGNING_KEY),
        _load_x25519(hub_dir / HUB_ENCRYPTION_KEY),
    )
    published = hub_dir / HUB_PUBLIC
    if published.exists():
        pub = load_hub_public(published)
        mine = keys.public()
        if (pub.signing_key_id, pub.encryption_key_id) != (mine.signing_key_id, mine.encryption_key_id):
            raise KeyFileError(f"{published} does not match the private keys in {hub_dir}")
    return keys


def load_trust_private(trust_dir: Path, trust_id: str) -> Ed25519PrivateKey:
    """A trust's result-signing key, ``trust_<id>.key`` in ``trust_dir``."""
    _require_dir(trust_dir, "trust key directory")
    return _load_ed25519(trust_dir / trust_private_name(trust_id))


def _load_public_doc(path: Path, kind: str, check_mode: bool) -> dict[str, Any]:
    # Installed public files are trust anchors: whoever can write them can impersonate the hub or a trust.
    data = _read_checked(path, 0o022 if check_mode else 0, "chmod 644")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{path} is not a JSON public key file") from None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise KeyFileError(f"{path} is not a file of kind {kind!r}")
    if doc.get("version") != FILE_FORMAT_VERSION:
        raise KeyFileError(f"{path} has unsupported version {doc.get('version')!r}")
    return doc


def _public_from(doc: dict[str, Any], field: str, kid_field: str, cls: Any, path: Path) -> Any:
    raw = doc.get(field)
    try:
        if not isinstance(raw, str):
            raise ValueError
        key = cls.from_public_bytes(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error):
        raise KeyFileError(f"{path}: {field} is not a valid public key") from None
    if doc.get(kid_field) != key_id(key):
        raise KeyFileError(f"{path}: {kid_field} does not match {field}; the file is damaged or was edited")
    return key


def load_hub_public(path: Path, *, check_mode: bool = True) -> HubPublicKeys:
    """Hub public keys from a ``hub.pub.json`` file (key ids checked against the keys).

    ``check_mode`` refuses a file others can write; off only for a file being imported (it is copied).
    """
    doc = _load_public_doc(path, HUB_PUBLIC_KIND, check_mode)
    return HubPublicKeys(
        _public_from(doc, "signing_public_key", "signing_key_id", Ed25519PublicKey, path),
        _public_from(doc, "encryption_public_key", "encryption_key_id", X25519PublicKey, path),
    )


def load_pinned_hub(trust_dir: Path) -> HubPublicKeys:
    """The hub public keys pinned at a trust (``hub.pub.json`` in ``trust_dir``)."""
    _require_dir(trust_dir, "trust key directory")
    path = trust_dir / HUB_PUBLIC
    if not path.exists():
        raise KeyFileError(
            f"no pinned hub key in {trust_dir}; run: omopfed keys pin-hub --trust-dir {trust_dir} FILE"
        )
    return load_hub_public(path)


def load_trust_public(path: Path, *, check_mode: bool = True) -> TrustPublicKey:
    """A trust's public key from its ``.pub.json`` file (trust id and key id checked).

    ``check_mode`` refuses a file others can write; off only for a file being imported (it is copied).
    """
    doc = _load_public_doc(path, TRUST_PUBLIC_KIND, check_mode)
    trust_id = doc.get("trust_id")
    if not isinstance(trust_id, str):
        raise KeyFileError(f"{path}: trust_id is missing")
    try:
        check_trust_id(trust_id)
    except OmopFedError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    return TrustPublicKey(trust_id, _public_from(doc, "signing_public_key", "key_id", Ed25519PublicKey, path))


def load_trust_registry(hub_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Every registered trust's verify key, by trust id (empty before any trust is registered)."""
    _require_dir(hub_dir, "hub key directory")
    registry = hub_dir / TRUST_REGISTRY
    keys: dict[str, Ed25519PublicKey] = {}
    if not registry.is_dir():
        return keys
    for path in sorted(registry.glob("*.pub.json")):
        trust = load_trust_public(path)
        if path.name != f"{trust.trust_id}.pub.json":
            raise KeyFileError(
                f"{path} holds the key of trust {trust.trust_id!r}; file name and trust id differ"
            )
        keys[trust.trust_id] = trust.signing
    return keys


# -- listing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFileInfo:
    """One line of ``omopfed keys list``: a file, what it is, its key id(s) or the problem with it."""

    path: Path
    description: str
    key_ids: str
    problem: str | None = None


def _describe(path: Path, description: str, loader: Any) -> KeyFileInfo:
    try:
        return KeyFileInfo(path, description, loader())
    except OmopFedError as exc:
        return KeyFileInfo(path, description, "-", str(exc))


def _private_kid(path: Path) -> str:
    return key_id(load_private_key(path).public_key())


def _hub_kids(path: Path) -> str:
    hub = load_hub_public(path)
    return f"signing {hub.signing_key_id}, encryption {hub.encryption_key_id}"


def describe_dir(directory: Path) -> list[KeyFileInfo]:
    """What key files ``directory`` holds (hub or trust layout), with key ids; secrets are never shown."""
    _require_dir(directory, "key directory")
    out: list[KeyFileInfo] = []
    for path in sorted(directory.iterdir()):
        name = path.name
        if name == HUB_SIGNING_KEY:
            out.append(_describe(path, "hub signing key (private)", lambda p=path: _private_kid(p)))
        elif name == HUB_ENCRYPTION_KEY:
            out.append(_describe(path, "hub encryption key (private)", lambda p=path: _private_kid(p)))
        elif name == HUB_PUBLIC:
            is_hub = (directory / HUB_SIGNING_KEY).exists()
            what = "hub public keys" if is_hub else "pinned hub public keys"
            out.append(_describe(path, what, lambda p=path: _hub_kids(p)))
        elif name.startswith("trust_") and name.endswith(".key"):
            tid = name[len("trust_") : -len(".key")]
            out.append(_describe(path, f"trust {tid} signing key (private)", lambda p=path: _private_kid(p)))
        elif name.startswith("trust_") and name.endswith(".pub.json"):
            tid = name[len("trust_") : -len(".pub.json")]
            out.append(_describe(path, f"trust {tid} public key", lambda p=path: load_trust_public(p).key_id))
    registry = directory / TRUST_REGISTRY
    if registry.is_dir():
        for path in sorted(registry.glob("*.pub.json")):
            tid = path.name[: -len(".pub.json")]
            out.append(_describe(path, f"registered trust {tid}", lambda p=path: load_trust_public(p).key_id))
    return out
