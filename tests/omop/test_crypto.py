"""Task signatures and result envelopes: every way a message can be forged, tampered or misrouted."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from omop.crypto import (
    CLOCK_SKEW,
    ENVELOPE_SIGNATURE_CONTEXT,
    HKDF_INFO,
    TASK_SIGNATURE_CONTEXT,
    ResultRejected,
    TaskRejected,
    key_id,
    open_result,
    raw_public_bytes,
    seal_result,
    sign_task,
    verify_task,
)
from omop.numeric_spec import NumericRequest
from omop.protocol import ResultEnvelope, SignedTask, TrustResult, canonical_json, envelope_associated_data
from tests.omop.test_protocol import NOW, make_result, make_task

HUB_SIGN = Ed25519PrivateKey.generate()
HUB_ENC = X25519PrivateKey.generate()
NORTH = Ed25519PrivateKey.generate()
SOUTH = Ed25519PrivateKey.generate()
REGISTRY = {"north-trust": NORTH.public_key(), "south-trust": SOUTH.public_key()}


def verify(signed: SignedTask, **over: Any) -> Any:
    kwargs: dict[str, Any] = {"expected_trust_id": "north-trust", "now": NOW + timedelta(minutes=1)}
    kwargs.update(over)
    return verify_task(signed, HUB_SIGN.public_key(), **kwargs)


def rejected_code(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises((TaskRejected, ResultRejected)) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, TaskRejected | ResultRejected)
    return info.value.code


# -- key ids -------------------------------------------------------------------------------------------


def test_key_id_is_short_stable_and_distinct() -> None:
    kid = key_id(HUB_SIGN.public_key())
    assert len(kid) == 16 and int(kid, 16) >= 0
    assert kid == key_id(HUB_SIGN.public_key())
    assert kid != key_id(NORTH.public_key())
    assert len(raw_public_bytes(HUB_ENC.public_key())) == 32


# -- tasks ---------------------------------------------------------------------------------------------


def test_sign_verify_round_trip_through_wire() -> None:
    task = make_task()
    signed = sign_task(task, HUB_SIGN)
    assert signed.key_id == key_id(HUB_SIGN.public_key())
    wire = json.loads(json.dumps(signed.to_wire()))
    assert verify(SignedTask.from_wire(wire)) == task


def test_numeric_request_is_signed_and_read_back_to_the_byte() -> None:
    request = NumericRequest.from_cli("bmi:10:70,age", ["bmi=15:45:10"])
    signed = sign_task(make_task(numeric=request), HUB_SIGN)
    back = verify(SignedTask.from_wire(json.loads(json.dumps(signed.to_wire()))))
    assert back.numeric == request
    assert canonical_json(back) == signed.payload
    finer = signed.payload.replace(b"[15.0,45.0,10]", b"[15.0,45.0,1000]")
    assert finer != signed.payload
    assert rejected_code(verify, signed.model_copy(update={"payload": finer})) == "bad_signature"


def test_signature_covers_exactly_the_payload_bytes_with_context() -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    assert signed.payload == canonical_json(make_task(query_id=json.loads(signed.payload)["query_id"]))
    HUB_SIGN.public_key().verify(signed.signature, TASK_SIGNATURE_CONTEXT + signed.payload)


def test_task_signed_by_another_key_claiming_the_hub_key_id_is_bad_signature() -> None:
    forged = sign_task(make_task(), NORTH).model_copy(update={"key_id": key_id(HUB_SIGN.public_key())})
    assert rejected_code(verify, forged) == "bad_signature"


def test_task_signed_by_another_key_is_wrong_key() -> None:
    assert rejected_code(verify, sign_task(make_task(), NORTH)) == "wrong_key"


def test_tampered_payload_is_bad_signature() -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    payload = signed.payload.replace(b"omop.person", b"omop.death_")
    assert payload != signed.payload
    assert rejected_code(verify, signed.model_copy(update={"payload": payload})) == "bad_signature"


def test_tampered_signature_is_bad_signature() -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    sig = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    assert rejected_code(verify, signed.model_copy(update={"signature": sig})) == "bad_signature"


def test_signature_without_context_does_not_verify() -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    bare = HUB_SIGN.sign(signed.payload)
    assert rejected_code(verify, signed.model_copy(update={"signature": bare})) == "bad_signature"


def test_misaddressed_task() -> None:
    signed = sign_task(make_task(trust_id="south-trust"), HUB_SIGN)
    assert rejected_code(verify, signed) == "misaddressed"
    assert verify(signed, expected_trust_id="south-trust").trust_id == "south-trust"


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (timedelta(hours=1), "expired"),  # exactly at expires_at
        (timedelta(hours=2), "expired"),
        (-CLOCK_SKEW - timedelta(seconds=1), "not_yet_valid"),
        (-timedelta(days=1), "not_yet_valid"),
    ],
)
def test_validity_window(offset: timedelta, code: str) -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    assert rejected_code(verify, signed, now=NOW + offset) == code


@pytest.mark.parametrize("offset", [-CLOCK_SKEW, timedelta(0), timedelta(minutes=59, seconds=59)])
def test_inside_window_and_skew_is_accepted(offset: timedelta) -> None:
    signed = sign_task(make_task(), HUB_SIGN)
    assert verify(signed, now=NOW + offset).issued_at == NOW


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify(sign_task(make_task(), HUB_SIGN), now=NOW.replace(tzinfo=None))


def _hub_signed(payload: bytes) -> SignedTask:
    return SignedTask(
        payload=payload,
        signature=HUB_SIGN.sign(TASK_SIGNATURE_CONTEXT + payload),
        key_id=key_id(HUB_SIGN.public_key()),
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"version":1}',
        b'{"version":2}',
        canonical_json(make_task()).replace(b'"version":1', b'"version":1,"version":1'),
    ],
)
def test_validly_signed_garbage_is_malformed(payload: bytes) -> None:
    assert rejected_code(verify, _hub_signed(payload)) == "malformed"


@given(st.binary(min_size=1, max_size=200) | st.text(max_size=200).map(str.encode).filter(bool))
@settings(max_examples=150, deadline=None)
def test_random_signed_payloads_never_crash(payload: bytes) -> None:
    assert rejected_code(verify, _hub_signed(payload)) == "malformed"


# -- result envelopes ----------------------------------------------------------------------------------


def seal(result: TrustResult | None = None, signer: Ed25519PrivateKey = NORTH, **kw: Any) -> ResultEnvelope:
    return seal_result(result or make_result(), HUB_ENC.public_key(), signer, **kw)


def open_(envelope: ResultEnvelope, hub: X25519PrivateKey = HUB_ENC) -> TrustResult:
    return open_result(envelope, trust_verify_keys=REGISTRY, hub_x25519_private=hub)


def resign(envelope: ResultEnvelope, signer: Ed25519PrivateKey = NORTH, **update: Any) -> ResultEnvelope:
    """Change envelope fields and sign again as a trust would: tests the AEAD, not the signature."""
    changed = envelope.model_copy(update={"key_id": key_id(signer.public_key()), **update})
    sig = signer.sign(ENVELOPE_SIGNATURE_CONTEXT + changed.signed_bytes())
    return changed.model_copy(update={"signature": sig})


def hand_sealed(plaintext: bytes, query_id: str, trust_id: str, signer: Ed25519PrivateKey) -> ResultEnvelope:
    """An envelope built from the documented construction with primitives, around arbitrary plaintext."""
    eph = X25519PrivateKey.generate()
    eph_pub = raw_public_bytes(eph.public_key())
    hub_pub = raw_public_bytes(HUB_ENC.public_key())
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + hub_pub, info=HKDF_INFO).derive(
        eph.exchange(HUB_ENC.public_key())
    )
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, plaintext, envelope_associated_data(1, query_id, trust_id))
    unsigned = ResultEnvelope(
        query_id=query_id,
        trust_id=trust_id,
        key_id=key_id(signer.public_key()),
        ephemeral_public=eph_pub,
        nonce=nonce,
        ciphertext=ct,
        signature=bytes(64),
    )
    return resign(unsigned, signer)


def test_seal_open_round_trip_through_wire() -> None:
    result = make_result()
    envelope = seal(result)
    assert envelope.query_id == result.query_id and envelope.trust_id == result.trust_id
    assert envelope.key_id == key_id(NORTH.public_key())
    assert b"8532" not in envelope.ciphertext  # it is encrypted
    wire = json.loads(json.dumps(envelope.to_wire()))
    assert open_(ResultEnvelope.from_wire(wire)) == result


def test_each_seal_uses_fresh_ephemeral_key_and_nonce() -> None:
    a, b = seal(), seal()
    assert a.ephemeral_public != b.ephemeral_public and a.nonce != b.nonce and a.ciphertext != b.ciphertext


def test_documented_construction_interoperates() -> None:
    result = make_result()
    assert open_(hand_sealed(canonical_json(result), "q1", "north-trust", NORTH)) == result


def test_seal_refuses_key_id_of_another_key() -> None:
    with pytest.raises(ValueError, match="does not belong"):
        seal(trust_key_id=key_id(SOUTH.public_key()))
    assert seal(trust_key_id=key_id(NORTH.public_key())).key_id == key_id(NORTH.public_key())


@pytest.mark.parametrize(
    "update",
    [
        lambda e: {"ciphertext": bytes([e.ciphertext[0] ^ 1]) + e.ciphertext[1:]},
        lambda e: {"nonce": bytes([e.nonce[0] ^ 1]) + e.nonce[1:]},
        lambda e: {"query_id": "q2"},
        lambda e: {"ephemeral_public": raw_public_bytes(X25519PrivateKey.generate().public_key())},
        lambda e: {"signature": bytes([e.signature[0] ^ 1]) + e.signature[1:]},
    ],
)
def test_tampering_without_resigning_is_bad_signature(update: Any) -> None:
    envelope = seal()
    assert rejected_code(open_, envelope.model_copy(update=update(envelope))) == "bad_signature"


@pytest.mark.parametrize(
    "update",
    [
        lambda e: {"ciphertext": bytes([e.ciphertext[0] ^ 1]) + e.ciphertext[1:]},
        lambda e: {"ciphertext": e.ciphertext[:-1]},
        lambda e: {"nonce": bytes([e.nonce[0] ^ 1]) + e.nonce[1:]},
        lambda e: {"query_id": "q2"},  # associated data no longer matches
        lambda e: {"ephemeral_public": raw_public_bytes(X25519PrivateKey.generate().public_key())},
        lambda e: {"ephemeral_public": bytes(32)},  # low-order point: X25519 refuses
    ],
)
def test_tampering_then_resigning_is_decrypt_failed(update: Any) -> None:
    envelope = seal()
    assert rejected_code(open_, resign(envelope, **update(envelope))) == "decrypt_failed"


def test_swapping_trust_id_is_rejected_even_when_the_other_trust_signs() -> None:
    envelope = seal()  # north's result
    assert rejected_code(open_, envelope.model_copy(update={"trust_id": "south-trust"})) == "wrong_key"
    # south re-signs north's ciphertext under its own name: the AEAD binds trust_id
    assert rejected_code(open_, resign(envelope, SOUTH, trust_id="south-trust")) == "decrypt_failed"


def test_signed_by_another_trusts_key_is_rejected() -> None:
    forged = seal(signer=SOUTH)  # claims north-trust (inside result) but signed with south's key
    assert rejected_code(open_, forged) == "wrong_key"
    with_north_kid = forged.model_copy(update={"key_id": key_id(NORTH.public_key())})
    sig = SOUTH.sign(ENVELOPE_SIGNATURE_CONTEXT + with_north_kid.signed_bytes())
    assert rejected_code(open_, with_north_kid.model_copy(update={"signature": sig})) == "bad_signature"


def test_unknown_trust() -> None:
    stranger = Ed25519PrivateKey.generate()
    envelope = seal(make_result(trust_id="east-trust"), signer=stranger)
    assert rejected_code(open_, envelope) == "unknown_trust"


def test_signature_is_checked_before_decryption() -> None:
    """A bad signature wins over an envelope that would also fail to decrypt."""
    envelope = seal()
    broken = envelope.model_copy(update={"ephemeral_public": bytes(32), "signature": bytes(64)})
    assert rejected_code(open_, broken) == "bad_signature"


def test_envelope_for_another_hub_key_is_decrypt_failed() -> None:
    other_hub = X25519PrivateKey.generate()
    envelope = seal_result(make_result(), other_hub.public_key(), NORTH)
    assert rejected_code(open_, envelope) == "decrypt_failed"
    assert open_(envelope, hub=other_hub) == make_result()


@pytest.mark.parametrize(("query_id", "trust_id"), [("q2", "north-trust"), ("q1", "south-trust")])
def test_inner_outer_mismatch(query_id: str, trust_id: str) -> None:
    inner = canonical_json(make_result(query_id=query_id, trust_id=trust_id))
    envelope = hand_sealed(inner, "q1", "north-trust", NORTH)
    assert rejected_code(open_, envelope) == "mismatch"


@pytest.mark.parametrize(
    "plaintext",
    [b"not json", b'{"version":1}', canonical_json(make_result())[:-1], b'{"version":2,"query_id":"q1"}'],
)
def test_undecodable_plaintext_is_malformed(plaintext: bytes) -> None:
    assert rejected_code(open_, hand_sealed(plaintext, "q1", "north-trust", NORTH)) == "malformed"


def test_plaintext_breaking_the_disclosure_contract_is_malformed() -> None:
    doc = json.loads(canonical_json(make_result()))
    doc["sex"] = {"8507": 3, "8532": 22}
    assert rejected_code(open_, hand_sealed(canonical_json(doc), "q1", "north-trust", NORTH)) == "malformed"
