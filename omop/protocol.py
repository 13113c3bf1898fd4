"""Wire protocol between hub and trusts: the messages, their canonical bytes and their wire dicts.

Both sides import this module and nothing of each other, so every message a trust or the hub can see is
defined here. The models are strict (no silent coercion), reject unknown fields and are frozen: a message is
a value, not a mutable object that a handler could change after it was checked.

Two messages travel through the broker (``docs/transport.md``):

- ``SignedTask`` (hub → the trust's Celery queue ``trust.<id>``): the canonical JSON bytes of a
  ``CohortTask``, the hub's Ed25519 signature over those bytes and the hub key id. The trust verifies the
  signature over the exact bytes it received and only then parses them (``omop.crypto.verify_task``);
  nothing is re-serialised in between, so what was signed is exactly what is executed.
- ``ResultEnvelope`` (trust → its own results list ``hub.results.<id>``, pushed with ``RPUSH``, not a
  Celery message): a ``TrustResult`` encrypted to the hub and signed by the trust
  (``omop.crypto.seal_result`` / ``open_result``).

Both travel as JSON (a task as the argument of a Celery task, an answer as a JSON string on the list), so
both have ``to_wire()`` (a dict of str/int) and ``from_wire(obj)``. Anything
malformed coming off the wire — not a dict, missing or extra fields, wrong types, bad base64, wrong version —
raises one exception type, ``ProtocolError``, so a worker has exactly one thing to catch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from omop.disclosure import MIN_THRESHOLD
from omop.errors import ProtocolError as ProtocolError
from omop.errors import UsageError, first_invalid
from omop.numeric_disclosure import check_released_numeric
from omop.numeric_spec import NumericRequest
from omop.states import PrivacyMode, ReasonCode, RefusalCode
from omop.states import ResultStatus as ResultStatus

PROTOCOL_VERSION: Literal[1] = 1

TRUST_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""A trust id is also a queue name (``trust.<id>``), a Redis ACL user and a file name: keep it boring."""

QUERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""A uuid4 hex (``new_query_id()``) or another safe token; it ends up in file names and log lines."""

PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""Names the protocol treats as identifiers: option names."""
REASON_CODE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_DETAIL_CHARS = 1000

EXECUTION_FAILED = ReasonCode.EXECUTION_FAILED
EXECUTION_FAILED_DETAIL = "the trust could not run this query"
"""The one wording of every execution failure (timeout, lock, temp-file limit, privilege, lost connection,
data changed, any database error). A researcher who can make a query fail only when some person has some
property must not learn which failure it was; the cause is in the trust's own audit log."""

KEY_ID_PATTERN = r"^[0-9a-f]{16}$"

MAX_SQL_CHARS = 64 * 1024
"""A transport-level ceiling only; the SQL policy enforces the real (smaller) cap."""
MAX_TASK_BYTES = 256 * 1024
MAX_CIPHERTEXT_BYTES = 4 * 1024 * 1024
MAX_TASK_LIFETIME = timedelta(days=7)
"""Bounds how long a trust must remember executed query ids to detect replays."""

_TRUST_ID_RE = re.compile(TRUST_ID_PATTERN)


def check_trust_id(value: str) -> str:
    """Return ``value`` if it is a valid trust id, else raise ``UsageError`` saying what a valid one is."""
    if not isinstance(value, str) or not _TRUST_ID_RE.fullmatch(value):
        raise UsageError(
            f"invalid trust id {value!r}: use 1-63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def new_query_id() -> str:
    """A fresh query id (uuid4 hex)."""
    return uuid.uuid4().hex


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes of ``obj``: sorted keys, no whitespace, UTF-8, no NaN/Infinity.

    Used for everything that is signed or used as AEAD associated data. Pydantic models are dumped in JSON
    mode first (datetimes become ISO 8601 strings). Raises ``ProtocolError`` for values JSON cannot carry.
    """
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(
            RefusalCode.MALFORMED, f"value cannot be encoded as canonical JSON: {exc}"
        ) from exc
    return text.encode("utf-8")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as text (the form every wire dict uses)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, field: str) -> bytes:
    """Decode strict standard base64 (padding required, no stray characters) or raise ``ProtocolError``."""
    if not isinstance(text, str):
        raise ProtocolError(RefusalCode.MALFORMED, f"field {field!r} must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ProtocolError(RefusalCode.BAD_BASE64, f"field {field!r} is not valid base64") from exc


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _first_error(exc: ValidationError) -> str:
    problem = first_invalid(exc)
    return f"{problem.where('message')}: {problem.message}"


_Scalar = str | int | float | bool
OptionValue = _Scalar | list[_Scalar]


class CohortTask(_Message):
    """One question for one trust. The hub signs its canonical bytes; the trust executes it at most once.

    ``sql`` is the researcher's cohort query (validated at the trust by the SQL policy, never trusted). A
    trust answers its cohort figures and, when ``numeric`` holds a request (``omop.numeric_spec``, checked
    here like every other field), numeric statistics of its output columns too. ``options`` carries
    parameters of later kinds of task (none today).
    The task is valid from ``issued_at`` (give or take clock skew) until ``expires_at``.
    """

    version: Literal[1] = PROTOCOL_VERSION
    query_id: str = Field(pattern=QUERY_ID_PATTERN)
    trust_id: str = Field(pattern=TRUST_ID_PATTERN)
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS)
    project_id: str = Field(pattern=PROJECT_ID_PATTERN)
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    options: dict[str, OptionValue] = Field(default_factory=dict, max_length=64)
    numeric: NumericRequest | None = None

    @field_validator("issued_at", "expires_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("options")
    @classmethod
    def _option_keys_are_tokens(cls, value: dict[str, OptionValue]) -> dict[str, OptionValue]:
        for key in value:
            if not re.fullmatch(IDENTIFIER_PATTERN, key):
                raise ValueError(f"option name {key!r} is not a lowercase token")
        return value

    @model_validator(mode="after")
    def _window(self) -> CohortTask:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if self.expires_at - self.issued_at > MAX_TASK_LIFETIME:
            raise ValueError(f"a task may live at most {MAX_TASK_LIFETIME.days} days")
        return self


class ColumnCounts(_Message):
    """Null / non-null counts of one output column (each 0 or at least the threshold when released)."""

    non_null: int | None = Field(default=None, ge=0)
    null: int | None = Field(default=None, ge=0)


class PrivacyStatement(_Message):
    """How an answer's figures were protected, stated in every answer a trust runs a query for.

    ``mode`` ``exact``: threshold and merging rules only (a governance decision at that trust).
    ``mode`` ``dp``: ``epsilon`` is the privacy loss charged to the project for this query, ``scales`` the
    noise scale of each figure group (``person_count``, ``sex``, ``age``, ``rows``,
    ``numeric.<column>.n|sum|sumsq|histogram``), from which the hub reports each figure's uncertainty,
    ``budget_left`` what the project has left at this trust, and ``bounds`` the clamping range of each
    numeric column (means lie inside it).
    """

    mode: PrivacyMode = Field(strict=False)
    mechanism: str | None = Field(default=None, max_length=200)
    epsilon: float | None = Field(default=None, ge=0)
    budget_left: float | None = Field(default=None, ge=0)
    scales: dict[str, float] = Field(default_factory=dict, max_length=4 * 64 + 8)
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict, max_length=64)


def answer_timestamp(moment: datetime) -> datetime:
    """``moment`` in UTC without its fraction of a second: the only precision a ``produced_at`` carries."""
    return moment.astimezone(UTC).replace(microsecond=0)


class TrustResult(_Message):
    """What a trust answers (the plaintext inside a ``ResultEnvelope``).

    The privacy contract is checked here as well as in the trust's disclosure code, so that neither side
    can build or accept a message that breaks it: only ``released`` carries figures; a released result has
    ``person_count >= threshold``; every released count in ``sex``, ``age`` and ``columns`` is 0 or at least
    the threshold; and the threshold itself is never below ``MIN_THRESHOLD``. ``numeric`` (per-column
    figures of a numeric request) is checked here too, by ``omop.numeric_disclosure.check_released_numeric``
    (in dp mode without requiring histogram cells to add up to ``n``: each cell carries its own noise). In dp
    mode the figures are noisy and the same rules hold for the noisy values; ``privacy`` says which mode the
    trust answered in and, in dp mode, the epsilon charged and the noise scales.

    An answer says nothing about *how* the query ran: there is no duration field, an execution failure
    carries exactly ``EXECUTION_FAILED_DETAIL`` (enforced here), and ``produced_at`` is the time the trust
    *received* the task, in whole seconds (``answer_timestamp``), not the time it finished. A finishing time
    minus the hub's own issue time would be the query's running time, and a query built to run slowly only
    for one person would reveal that person's data. The receipt time reveals at most how long the task
    waited in the trust's queue, which the arrival times of earlier answers already show the hub.
    """

    version: Literal[1] = PROTOCOL_VERSION
    query_id: str = Field(pattern=QUERY_ID_PATTERN)
    trust_id: str = Field(pattern=TRUST_ID_PATTERN)
    status: ResultStatus = Field(strict=False)
    detail: str | None = Field(default=None, max_length=MAX_DETAIL_CHARS)
    reason_code: str | None = Field(default=None, pattern=REASON_CODE_PATTERN)
    threshold: int = Field(ge=MIN_THRESHOLD)
    person_count: int | None = Field(default=None, ge=0)
    row_count: int | None = Field(default=None, ge=0)
    columns: dict[str, ColumnCounts] | None = None
    sex: dict[str, int] | None = None
    age: dict[str, int] | None = None
    numeric: dict[str, Any] | None = None
    privacy: PrivacyStatement | None = None
    produced_at: AwareDatetime

    @field_validator("produced_at")
    @classmethod
    def _whole_seconds_utc(cls, value: datetime) -> datetime:
        return answer_timestamp(value)

    @field_validator("detail", mode="before")
    @classmethod
    def _shorten_detail(cls, value: object) -> object:
        """A rejection message can be long; the result carries its beginning rather than failing.

        No database error text is ever a detail: every execution failure is ``EXECUTION_FAILED_DETAIL``.
        """
        if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
            return value[: MAX_DETAIL_CHARS - 3] + "..."
        return value

    _FIGURES: ClassVar[tuple[str, ...]] = ("person_count", "row_count", "columns", "sex", "age", "numeric")

    @model_validator(mode="after")
    def _disclosure_contract(self) -> TrustResult:
        if self.reason_code == EXECUTION_FAILED and (
            self.status is not ResultStatus.ERROR or self.detail != EXECUTION_FAILED_DETAIL
        ):
            raise ValueError(
                f"an {EXECUTION_FAILED} result is an error carrying exactly {EXECUTION_FAILED_DETAIL!r}"
            )
        if self.status is not ResultStatus.RELEASED:
            carried = [name for name in self._FIGURES if getattr(self, name) is not None]
            if carried:
                raise ValueError(f"a {self.status} result must not carry figures ({', '.join(carried)})")
            return self
        t = self.threshold
        if self.person_count is None or self.person_count < t:
            raise ValueError("a released result needs person_count at or above the threshold")
        if self.row_count is not None and self.row_count < t:
            raise ValueError("a released row_count must be at least the threshold")
        cells: list[tuple[str, int | None]] = []
        for table in ("sex", "age"):
            cells += [(f"{table}.{k}", v) for k, v in (getattr(self, table) or {}).items()]
        for name, cc in (self.columns or {}).items():
            cells += [(f"columns.{name}.non_null", cc.non_null), (f"columns.{name}.null", cc.null)]
        for where, value in cells:
            if value is not None and (value < 0 or 0 < value < t):
                raise ValueError(f"released cell {where} must be 0 or at least the threshold")
        if self.numeric is not None:
            noisy = self.privacy is not None and self.privacy.mode is PrivacyMode.DP
            check_released_numeric(self.numeric, t, histogram_adds_up=not noisy)
        return self


M = TypeVar("M", bound=BaseModel)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in JSON object")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"number {text} is out of range")
    return value


def parse_json_model(model: type[M], data: bytes) -> M:
    """Parse JSON bytes into ``model`` or raise ``ProtocolError``.

    The bytes are first checked with the standard library parser for duplicate keys and NaN/Infinity, so
    that no two JSON parsers could read the same signed bytes differently; then pydantic validates them
    strictly.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(RefusalCode.MALFORMED, "message body must be bytes")
    raw = bytes(data)
    try:
        doc = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(RefusalCode.MALFORMED, f"not a JSON document: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProtocolError(RefusalCode.MALFORMED, "message must be a JSON object")
    version = doc.get("version")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(RefusalCode.BAD_VERSION, f"unsupported protocol version {version!r}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ProtocolError(RefusalCode.MALFORMED, _first_error(exc)) from exc


def parse_task(data: bytes) -> CohortTask:
    """``CohortTask`` from its JSON bytes (``ProtocolError`` if malformed). Call only on verified bytes."""
    return parse_json_model(CohortTask, data)


def parse_result(data: bytes) -> TrustResult:
    """``TrustResult`` from its JSON bytes (``ProtocolError`` if malformed)."""
    return parse_json_model(TrustResult, data)


def _check_wire_dict(data: object, fields: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise ProtocolError(RefusalCode.MALFORMED, "message must be a JSON object")
    if not all(isinstance(k, str) for k in data):
        raise ProtocolError(RefusalCode.MALFORMED, "message keys must be strings")
    missing = [f for f in fields if f not in data]
    extra = sorted(str(k) for k in data if k not in fields)
    if missing:
        raise ProtocolError(RefusalCode.MALFORMED, f"missing field(s): {', '.join(missing)}")
    if extra:
        raise ProtocolError(RefusalCode.MALFORMED, f"unknown field(s): {', '.join(extra)}")
    version = data["version"]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(RefusalCode.BAD_VERSION, f"unsupported protocol version {version!r}")
    return data


def _validate(model: type[M], values: dict[str, object]) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ProtocolError(RefusalCode.MALFORMED, _first_error(exc)) from exc


def _check_len(field: str, data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise ProtocolError(RefusalCode.TOO_LARGE, f"field {field!r} is larger than {limit} bytes")
    return data


class SignedTask(_Message):
    """A task as it travels: canonical task bytes, the hub's signature over them, the hub key id.

    Use ``omop.crypto.sign_task`` to build one and ``omop.crypto.verify_task`` to get the task back out;
    ``payload`` must not be parsed before the signature has been verified.
    """

    version: Literal[1] = PROTOCOL_VERSION
    payload: bytes = Field(min_length=1, max_length=MAX_TASK_BYTES)
    signature: bytes = Field(min_length=64, max_length=64)
    key_id: str = Field(pattern=KEY_ID_PATTERN)

    _WIRE_FIELDS: ClassVar[tuple[str, ...]] = ("version", "payload", "signature", "key_id")

    def to_wire(self) -> dict[str, Any]:
        """JSON-serialisable dict for a Celery message (bytes as base64)."""
        return {
            "version": self.version,
            "payload": b64encode(self.payload),
            "signature": b64encode(self.signature),
            "key_id": self.key_id,
        }

    @classmethod
    def from_wire(cls, data: object) -> SignedTask:
        """Inverse of ``to_wire``; ``ProtocolError`` for anything else."""
        d = _check_wire_dict(data, cls._WIRE_FIELDS)
        payload = d["payload"]
        if isinstance(payload, str) and len(payload) > (MAX_TASK_BYTES * 4) // 3 + 4:
            raise ProtocolError(RefusalCode.TOO_LARGE, "field 'payload' is too large")
        return _validate(
            cls,
            {
                "version": d["version"],
                "payload": _check_len("payload", b64decode(payload, "payload"), MAX_TASK_BYTES),
                "signature": b64decode(d["signature"], "signature"),
                "key_id": d["key_id"],
            },
        )


class ResultEnvelope(_Message):
    """A result as it travels: ``TrustResult`` encrypted to the hub, the whole envelope signed by the trust.

    ``key_id`` names the trust signing key; ``ephemeral_public`` is the sender's one-time X25519 public key;
    ``nonce`` and ``ciphertext`` are the AES-256-GCM nonce and ciphertext (tag appended). ``signature``
    covers ``signed_bytes()``, i.e. every other field. See ``omop.crypto`` for the construction.
    """

    version: Literal[1] = PROTOCOL_VERSION
    query_id: str = Field(pattern=QUERY_ID_PATTERN)
    trust_id: str = Field(pattern=TRUST_ID_PATTERN)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    ephemeral_public: bytes = Field(min_length=32, max_length=32)
    nonce: bytes = Field(min_length=12, max_length=12)
    ciphertext: bytes = Field(min_length=16, max_length=MAX_CIPHERTEXT_BYTES)
    signature: bytes = Field(min_length=64, max_length=64)

    _WIRE_FIELDS: ClassVar[tuple[str, ...]] = (
        "version",
        "query_id",
        "trust_id",
        "key_id",
        "ephemeral_public",
        "nonce",
        "ciphertext",
        "signature",
    )
    _BINARY: ClassVar[tuple[str, ...]] = ("ephemeral_public", "nonce", "ciphertext", "signature")

    def to_wire(self) -> dict[str, Any]:
        """JSON-serialisable dict for a Celery message (bytes as base64)."""
        out: dict[str, Any] = {}
        for name in self._WIRE_FIELDS:
            value = getattr(self, name)
            out[name] = b64encode(value) if name in self._BINARY else value
        return out

    @classmethod
    def from_wire(cls, data: object) -> ResultEnvelope:
        """Inverse of ``to_wire``; ``ProtocolError`` for anything else."""
        d = _check_wire_dict(data, cls._WIRE_FIELDS)
        ct = d["ciphertext"]
        if isinstance(ct, str) and len(ct) > (MAX_CIPHERTEXT_BYTES * 4) // 3 + 4:
            raise ProtocolError(RefusalCode.TOO_LARGE, "field 'ciphertext' is too large")
        values: dict[str, object] = {}
        for name in cls._WIRE_FIELDS:
            values[name] = b64decode(d[name], name) if name in cls._BINARY else d[name]
        return _validate(cls, values)

    def signed_bytes(self) -> bytes:
        """The canonical bytes the trust signs: every field but ``signature``, binary fields as base64."""
        wire = self.to_wire()
        del wire["signature"]
        return canonical_json(wire)

    def associated_data(self) -> bytes:
        """AEAD associated data: binds the ciphertext to this version, query and trust."""
        return envelope_associated_data(self.version, self.query_id, self.trust_id)


def envelope_associated_data(version: int, query_id: str, trust_id: str) -> bytes:
    """Canonical bytes of (version, query_id, trust_id), the associated data of a result's AEAD."""
    return canonical_json({"query_id": query_id, "trust_id": trust_id, "version": version})
