"""Signing of tasks and sealing of results: pure functions over keys and protocol messages.

Tasks (hub → trust) are signed with the hub's Ed25519 key. The signature covers a fixed context string
followed by the canonical task bytes, and the trust verifies it over the exact bytes it received before it
parses them; nothing is re-serialised on the way. Celery's own message signing is not used: its ``auth``
serializer is RSA-only, signs the body but not the headers and has no replay protection
(``docs/architecture.md``, "Celery and Redis facts that shape the design").

Results (trust → hub) are encrypted to the hub's X25519 key and then signed by the trust:

- a fresh ephemeral X25519 key pair per result; shared secret = X25519(ephemeral, hub public);
- key = HKDF-SHA256(shared secret, salt = ephemeral public || hub public, info = ``HKDF_INFO``), 32 bytes;
- AES-256-GCM with a random 12-byte nonce and associated data = canonical (version, query_id, trust_id);
- Ed25519 signature by the trust over a context string and the canonical encoding of every other
  envelope field (``ResultEnvelope.signed_bytes``).

The hub checks the signature against the key registered for the trust named in the envelope *before* it
decrypts, so unauthenticated data never reaches the decryption or JSON parsing code.

Why not HPKE: cryptography 50 ships ``hazmat.primitives.hpke``, but only since recent releases (this project
accepts cryptography >= 43, and a hospital may run an older distribution package), its public API has no
associated-data argument, and it returns one opaque blob rather than the ephemeral key / nonce / ciphertext
fields of our envelope. The construction above is the same shape as HPKE base mode (DHKEM-X25519, HKDF-SHA256,
AES-256-GCM) built from long-standing primitives.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from omop.errors import ResultRejected as ResultRejected
from omop.errors import TaskRejected as TaskRejected
from omop.protocol import (
    PROTOCOL_VERSION,
    CohortTask,
    ProtocolError,
    ResultEnvelope,
    SignedTask,
    TrustResult,
    canonical_json,
    envelope_associated_data,
    parse_result,
    parse_task,
)
from omop.states import RefusalCode

TASK_SIGNATURE_CONTEXT = b"omop-federation/v1/task-signature\x00"
ENVELOPE_SIGNATURE_CONTEXT = b"omop-federation/v1/result-envelope-signature\x00"
HKDF_INFO = b"omop-federation/v1/result-encryption X25519-HKDF-SHA256-AES-256-GCM"
"""Domain separation: a signature or key made for one purpose is useless for any other."""

CLOCK_SKEW = timedelta(seconds=60)
"""How far in the future a task's ``issued_at`` may be, to tolerate clocks that are slightly off."""

PublicKey = Ed25519PublicKey | X25519PublicKey


def raw_public_bytes(public_key: PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 or X25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: PublicKey) -> str:
    """Short fingerprint of a public key: first 16 hex digits of SHA-256 over its raw bytes.

    Short enough to read out on the phone when confirming a key at onboarding; used in messages so a
    receiver can tell "signed with a key I do not have" (rotation) from "forged".
    """
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


# -- tasks ---------------------------------------------------------------------------------------------


def sign_task(task: CohortTask, hub_signing_key: Ed25519PrivateKey) -> SignedTask:
    """Sign the canonical bytes of ``task`` with the hub key."""
    payload = canonical_json(task)
    signature = hub_signing_key.sign(TASK_SIGNATURE_CONTEXT + payload)
    return SignedTask(payload=payload, signature=signature, key_id=key_id(hub_signing_key.public_key()))


def verify_task(
    signed: SignedTask, hub_verify_key: Ed25519PublicKey, *, expected_trust_id: str, now: datetime
) -> CohortTask:
    """Return the task inside ``signed`` if the pinned hub key signed it for this trust and it is current.

    Order: key id, signature over the received bytes, parse those same bytes, addressee, validity window.
    Raises ``TaskRejected``. Replay detection needs state (the query ids this trust has already executed)
    and so is the caller's job: do it after this check, before executing.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    expected_kid = key_id(hub_verify_key)
    if signed.key_id != expected_kid:
        raise TaskRejected(
            RefusalCode.WRONG_KEY,
            f"signed with hub key {signed.key_id}, but the pinned hub key is {expected_kid}",
        )
    try:
        hub_verify_key.verify(signed.signature, TASK_SIGNATURE_CONTEXT + signed.payload)
    except InvalidSignature:
        raise TaskRejected(RefusalCode.BAD_SIGNATURE, "the hub signature does not verify") from None
    try:
        task = parse_task(signed.payload)
    except ProtocolError as exc:
        raise TaskRejected(RefusalCode.MALFORMED, exc.detail) from None
    if task.trust_id != expected_trust_id:
        raise TaskRejected(
            RefusalCode.MISADDRESSED, f"task is for trust {task.trust_id!r}, not {expected_trust_id!r}"
        )
    if now >= task.expires_at:
        raise TaskRejected(RefusalCode.EXPIRED, f"task expired at {task.expires_at.isoformat()}")
    if task.issued_at > now + CLOCK_SKEW:
        raise TaskRejected(
            RefusalCode.NOT_YET_VALID, f"task issued in the future ({task.issued_at.isoformat()})"
        )
    return task


# -- results -------------------------------------------------------------------------------------------


def _derive_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public, info=HKDF_INFO
    )
    return hkdf.derive(shared)


def seal_result(
    result: TrustResult,
    hub_x25519_public: X25519PublicKey,
    trust_signing_key: Ed25519PrivateKey,
    trust_key_id: str | None = None,
) -> ResultEnvelope:
    """Encrypt ``result`` to the hub and sign the envelope with the trust key.

    ``trust_key_id`` defaults to (and must equal) the key id of ``trust_signing_key``.
    """
    own_kid = key_id(trust_signing_key.public_key())
    if trust_key_id is not None and trust_key_id != own_kid:
        raise ValueError(f"trust_key_id {trust_key_id} does not belong to the signing key ({own_kid})")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = raw_public_bytes(ephemeral.public_key())
    recipient_public = raw_public_bytes(hub_x25519_public)
    key = _derive_key(ephemeral.exchange(hub_x25519_public), ephemeral_public, recipient_public)
    nonce = os.urandom(12)
    aad = envelope_associated_data(PROTOCOL_VERSION, result.query_id, result.trust_id)
    ciphertext = AESGCM(key).encrypt(nonce, canonical_json(result), aad)
    unsigned = ResultEnvelope(
        query_id=result.query_id,
        trust_id=result.trust_id,
        key_id=own_kid,
        ephemeral_public=ephemeral_public,
        nonce=nonce,
        ciphertext=ciphertext,
        signature=bytes(64),
    )
    signature = trust_signing_key.sign(ENVELOPE_SIGNATURE_CONTEXT + unsigned.signed_bytes())
    return unsigned.model_copy(update={"signature": signature})


def open_result(
    envelope: ResultEnvelope,
    *,
    trust_verify_keys: Mapping[str, Ed25519PublicKey],
    hub_x25519_private: X25519PrivateKey,
) -> TrustResult:
    """Verify, decrypt and parse a result envelope; raise ``ResultRejected`` on any failure.

    The signature is checked against the registered key of the trust the envelope names before anything
    is decrypted; the decrypted result must name the same query and trust as the envelope.
    """
    verify_key = trust_verify_keys.get(envelope.trust_id)
    if verify_key is None:
        raise ResultRejected(RefusalCode.UNKNOWN_TRUST, f"no registered key for trust {envelope.trust_id!r}")
    registered_kid = key_id(verify_key)
    if envelope.key_id != registered_kid:
        raise ResultRejected(
            RefusalCode.WRONG_KEY,
            f"trust {envelope.trust_id!r} signed with key {envelope.key_id}, "
            f"but its registered key is {registered_kid}",
        )
    try:
        verify_key.verify(envelope.signature, ENVELOPE_SIGNATURE_CONTEXT + envelope.signed_bytes())
    except InvalidSignature:
        raise ResultRejected(
            RefusalCode.BAD_SIGNATURE, f"signature of trust {envelope.trust_id!r} does not verify"
        ) from None
    recipient_public = raw_public_bytes(hub_x25519_private.public_key())
    try:
        peer = X25519PublicKey.from_public_bytes(envelope.ephemeral_public)
        shared = hub_x25519_private.exchange(peer)
        key = _derive_key(shared, envelope.ephemeral_public, recipient_public)
        plaintext = AESGCM(key).decrypt(envelope.nonce, envelope.ciphertext, envelope.associated_data())
    except (InvalidTag, ValueError):
        raise ResultRejected(
            RefusalCode.DECRYPT_FAILED, "the result does not decrypt with this hub key"
        ) from None
    try:
        result = parse_result(plaintext)
    except ProtocolError as exc:
        raise ResultRejected(RefusalCode.MALFORMED, exc.detail) from None
    if result.query_id != envelope.query_id or result.trust_id != envelope.trust_id:
        raise ResultRejected(
            RefusalCode.MISMATCH,
            f"envelope says query {envelope.query_id} / trust {envelope.trust_id!r}, "
            f"content says query {result.query_id} / trust {result.trust_id!r}",
        )
    return result
