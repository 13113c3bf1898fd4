"""Wire protocol: model validation, canonical bytes, wire dicts and their failure modes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from omop.errors import UsageError
from omop.numeric_spec import HistogramSpec, NumericRequest
from omop.protocol import (
    EXECUTION_FAILED,
    EXECUTION_FAILED_DETAIL,
    MAX_SQL_CHARS,
    CohortTask,
    ColumnCounts,
    ProtocolError,
    ResultEnvelope,
    ResultStatus,
    SignedTask,
    TrustResult,
    canonical_json,
    check_trust_id,
    new_query_id,
    parse_result,
    parse_task,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_task(**over: Any) -> CohortTask:
    values: dict[str, Any] = {
        "query_id": new_query_id(),
        "trust_id": "north-trust",
        "sql": "SELECT person_id FROM omop.person",
        "project_id": "proj-1",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }
    values.update(over)
    return CohortTask(**values)


def make_result(**over: Any) -> TrustResult:
    values: dict[str, Any] = {
        "query_id": "q1",
        "trust_id": "north-trust",
        "status": "released",
        "threshold": 10,
        "person_count": 25,
        "row_count": 40,
        "columns": {"person_id": ColumnCounts(non_null=25, null=0)},
        "sex": {"8507": 12, "8532": 13},
        "age": {"40-49": 15, "Other": 10, "90+": 0},
        "produced_at": NOW,
    }
    values.update(over)
    return TrustResult(**values)


# -- identifiers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["a", "0", "north-trust", "st_thomas_2", "x" * 63])
def test_valid_trust_ids_pass(good: str) -> None:
    assert check_trust_id(good) == good


@pytest.mark.parametrize("bad", ["", "-a", "_a", "North", "a.b", "a b", "x" * 64, "a/b", "é"])
def test_invalid_trust_ids_raise_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid trust id") as info:
        check_trust_id(bad)
    assert info.value.exit_code == 2


def test_new_query_id_is_uuid_hex_accepted_by_the_model() -> None:
    qid = new_query_id()
    assert len(qid) == 32 and int(qid, 16) >= 0
    assert make_task(query_id=qid).query_id == qid


# -- CohortTask ----------------------------------------------------------------------------------------


def test_task_defaults_and_kind() -> None:
    task = make_task()
    assert task.version == 1
    assert task.numeric is None
    assert task.options == {}


def test_task_times_are_normalised_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    task = make_task(issued_at=NOW.astimezone(plus2), expires_at=(NOW + timedelta(hours=1)).astimezone(plus2))
    assert task.issued_at.utcoffset() == timedelta(0)
    assert task.issued_at == NOW


@pytest.mark.parametrize(
    "over",
    [
        {"expires_at": NOW},
        {"expires_at": NOW - timedelta(seconds=1)},
        {"expires_at": NOW + timedelta(days=8)},
        {"issued_at": datetime(2025, 3, 1, 12, 0)},
        {"query_id": "has space"},
        {"query_id": "../etc/passwd"},
        {"query_id": "x" * 65},
        {"trust_id": "Bad"},
        {"kind": "drop_tables"},
        {"sql": ""},
        {"sql": "x" * (MAX_SQL_CHARS + 1)},
        {"statistics": []},
        {"statistics": ["sex", "sex"]},
        {"statistics": ["Person Count"]},
        {"project_id": ""},
        {"options": {"Bad Key": 1}},
        {"options": {"k": {"nested": 1}}},
        {"options": {"k": float("nan")}},
        {"unexpected": 1},
    ],
)
def test_task_model_rejects_bad_values(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_task(**over)


def test_task_is_frozen() -> None:
    task = make_task()
    with pytest.raises(ValidationError):
        setattr(task, "sql", "SELECT 1")  # noqa: B010 - assignment must be refused


def test_task_options_keep_their_types() -> None:
    task = make_task(options={"bins": [0, 10.5, True, "x"], "flag": False, "n": 3})
    back = parse_task(canonical_json(task))
    assert back == task
    assert back.options["flag"] is False
    assert type(back.options["n"]) is int


# -- canonical JSON ------------------------------------------------------------------------------------


def test_canonical_json_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"], "c": {"z": None, "y": True}}) == (
        '{"a":[1,"é"],"b":1,"c":{"y":true,"z":null}}'.encode()
    )


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: object()}, b"bytes"])
def test_canonical_json_rejects_non_json(value: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        canonical_json({"v": value})
    assert info.value.code == "malformed"


def test_canonical_json_of_model_is_its_json_dump() -> None:
    task = make_task(numeric=NumericRequest.from_cli("bmi", ["bmi=15:45:10"]))
    doc = json.loads(canonical_json(task))
    assert doc["issued_at"].startswith("2025-03-01T12:00:00")
    assert doc["numeric"] == {"columns": ["bmi"], "histograms": {"bmi": [15.0, 45.0, 10]}}
    assert list(doc) == sorted(doc)


# -- parsing bytes -------------------------------------------------------------------------------------


def test_parse_task_round_trip() -> None:
    task = make_task()
    assert parse_task(canonical_json(task)) == task


@settings(max_examples=200, deadline=None)
@given(
    lower=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-3, 1e6, allow_nan=False),
    bins=st.integers(1, 1000),
    bounds=st.one_of(st.none(), st.tuples(st.floats(-1e9, 0), st.floats(1e-3, 1e9))),
    listed=st.booleans(),
)
def test_numeric_request_round_trips_byte_identically(
    lower: float, width: float, bins: int, bounds: tuple[float, float] | None, listed: bool
) -> None:
    request = NumericRequest(
        columns=("x", "y") if listed else None,
        histograms={"x": HistogramSpec(lower=lower, upper=lower + width, bins=bins)},
        bounds={"x": bounds} if bounds is not None else {},
    )
    data = canonical_json(make_task(numeric=request))
    back = parse_task(data)
    assert back.numeric == request
    assert canonical_json(back) == data  # what the hub signs is what the trust reads, to the byte
    assert (b'"bounds"' in data) is (bounds is not None)  # no bounds declared: the key is absent


@pytest.mark.parametrize(
    "numeric",
    [
        {"columns": None},
        {"columns": [], "histograms": {}},
        {"columns": ["bmi", "bmi"], "histograms": {}},
        {"columns": ["age"], "histograms": {"bmi": [15.0, 45.0, 10]}},
        {"columns": None, "histograms": {"bmi": [45.0, 15.0, 10]}},
        {"columns": None, "histograms": {"bmi": [15.0, 45.0, 5000]}},
        {"columns": None, "histograms": {"bmi": {"lower": 15.0, "upper": 45.0, "bins": 10}}},
        {"columns": ["bmi"], "histograms": {}, "bounds": {"bmi": [70.0, 10.0]}},
        {"columns": ["bmi"], "histograms": {}, "bounds": {"bmi": [0.0, 1e12]}},
        {"columns": None, "histograms": {}, "extra": 1},
        "bmi",
    ],
)
def test_task_with_a_malformed_numeric_request_is_malformed(numeric: Any) -> None:
    doc = json.loads(canonical_json(make_task()))
    doc["numeric"] = numeric
    with pytest.raises(ProtocolError) as info:
        parse_task(json.dumps(doc).encode())
    assert info.value.code == "malformed"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.replace(b'"version":1', b'"version":1,"version":1'), "malformed"),
        (lambda b: b.replace(b'"version":1', b'"version":2'), "bad_version"),
        (lambda b: b.replace(b'"version":1', b'"version":true'), "bad_version"),
        (lambda b: b.replace(b'"version":1', b'"version":"1"'), "bad_version"),
        (lambda b: b.replace(b'"sql":', b'"sql":NaN,"x":'), "malformed"),
        (lambda b: b[:-1], "malformed"),
        (lambda b: b"\xff\xfe" + b, "malformed"),
        (lambda b: b"[1,2]", "malformed"),
        (lambda b: b.replace(b'"project_id"', b'"extra":1,"project_id"'), "malformed"),
        (lambda b: b.replace(b'"columns":["bmi"', b'"columns":[1'), "malformed"),
    ],
)
def test_parse_task_rejects_malformed_bytes(mutate: Any, code: str) -> None:
    task = make_task(numeric=NumericRequest(columns=("bmi", "age")))
    with pytest.raises(ProtocolError) as info:
        parse_task(mutate(canonical_json(task)))
    assert info.value.code == code


def test_parse_task_rejects_huge_numbers() -> None:
    doc = json.loads(canonical_json(make_task()))
    text = json.dumps(doc).replace('"options": {}', '"options": {"x": 1e999}')
    with pytest.raises(ProtocolError):
        parse_task(text.encode())


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_parse_task_never_crashes_on_random_bytes(data: bytes) -> None:
    try:
        parse_task(data)
    except ProtocolError as exc:
        assert exc.code in {"malformed", "bad_version"}


# -- TrustResult: the disclosure contract ----------------------------------------------------------------


def test_released_result_round_trip() -> None:
    result = make_result()
    assert parse_result(canonical_json(result)) == result


@pytest.mark.parametrize("status", ["suppressed", "rejected", "error"])
def test_non_released_result_without_figures_is_fine(status: ResultStatus) -> None:
    result = TrustResult(
        query_id="q1",
        trust_id="t",
        status=status,
        threshold=10,
        produced_at=NOW,
        reason_code="below_threshold",
    )
    assert result.person_count is None


@pytest.mark.parametrize("status", ["suppressed", "rejected", "error"])
@pytest.mark.parametrize(
    "figure",
    [
        {"person_count": 0},
        {"person_count": 9},
        {"row_count": 3},
        {"sex": {}},
        {"age": {"x": 0}},
        {"numeric": {}},
    ],
)
def test_non_released_result_must_not_carry_figures(status: ResultStatus, figure: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="must not carry figures"):
        TrustResult(query_id="q1", trust_id="t", status=status, threshold=10, produced_at=NOW, **figure)


@pytest.mark.parametrize(
    "over",
    [
        {"threshold": 9},
        {"person_count": None},
        {"person_count": 9},
        {"person_count": 19, "threshold": 20},
        {"row_count": 5},
        {"sex": {"8507": 1, "8532": 24}},
        {"age": {"40-49": 9}},
        {"age": {"40-49": -1}},
        {"columns": {"c": ColumnCounts(non_null=24, null=1)}},
        {"columns": {"c": {"non_null": 24, "nul": 1}}},
        {"produced_at": datetime(2025, 1, 1)},
        {"status": "leaked"},
        {"reason_code": "Not A Token"},
    ],
)
def test_result_model_rejects_contract_breaches(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_result(**over)


def test_results_carry_no_timing() -> None:
    """No duration field exists, and produced_at keeps whole seconds only (see TrustResult)."""
    with pytest.raises(ValidationError, match="elapsed_ms"):
        make_result(elapsed_ms=12.5)
    stamped = make_result(produced_at=datetime(2025, 3, 1, 12, 0, 7, 987654, tzinfo=UTC))
    assert stamped.produced_at == datetime(2025, 3, 1, 12, 0, 7, tzinfo=UTC)
    wire = json.loads(canonical_json(stamped))
    assert wire["produced_at"] == "2025-03-01T12:00:07Z"
    assert not any("elapsed" in key for key in wire)


def test_execution_failures_carry_exactly_one_wording() -> None:
    def failed(**over: Any) -> TrustResult:
        values: dict[str, Any] = {"status": "error", "reason_code": EXECUTION_FAILED}
        values.update(over)
        return TrustResult(query_id="q1", trust_id="t", threshold=10, produced_at=NOW, **values)

    assert failed(detail=EXECUTION_FAILED_DETAIL).detail == EXECUTION_FAILED_DETAIL
    for detail in (None, "the query exceeded the trust's statement timeout", "SQLSTATE 22012"):
        with pytest.raises(ValidationError, match="exactly"):
            failed(detail=detail)
    with pytest.raises(ValidationError, match="exactly"):
        failed(status="rejected", detail=EXECUTION_FAILED_DETAIL)


def test_released_cells_may_be_zero_or_at_threshold() -> None:
    result = make_result(sex={"8507": 0, "8532": 10}, columns={"c": ColumnCounts(non_null=10, null=0)})
    assert result.sex == {"8507": 0, "8532": 10}


# -- wire dicts ----------------------------------------------------------------------------------------


def signed_example() -> SignedTask:
    return SignedTask(
        payload=canonical_json(make_task()), signature=bytes(range(64)), key_id="0123456789abcdef"
    )


def envelope_example() -> ResultEnvelope:
    return ResultEnvelope(
        query_id="q1",
        trust_id="north-trust",
        key_id="fedcba9876543210",
        ephemeral_public=bytes(32),
        nonce=bytes(12),
        ciphertext=b"c" * 40,
        signature=bytes(64),
    )


@pytest.mark.parametrize("factory", [signed_example, envelope_example])
def test_wire_round_trip_through_json(factory: Any) -> None:
    msg = factory()
    wire = msg.to_wire()
    text = json.dumps(wire)  # what a Celery JSON message carries
    assert all(isinstance(v, str | int) for v in wire.values())
    assert type(msg).from_wire(json.loads(text)) == msg


@pytest.mark.parametrize("cls_factory", [(SignedTask, signed_example), (ResultEnvelope, envelope_example)])
@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda d: d.pop("signature"), "malformed"),
        (lambda d: d.update(extra="x"), "malformed"),
        (lambda d: d.update(version=2), "bad_version"),
        (lambda d: d.update(version=True), "bad_version"),
        (lambda d: d.update(version="1"), "bad_version"),
        (lambda d: d.update(signature="not base64!"), "bad_base64"),
        (lambda d: d.update(signature="AAAA" * 5), "malformed"),  # valid base64, wrong length
        (lambda d: d.update(signature=12), "malformed"),
        (lambda d: d.update(signature="ÿÿÿÿ"), "bad_base64"),
        (lambda d: d.update(key_id="ZZZZ"), "malformed"),
        (lambda d: d.update(key_id=None), "malformed"),
    ],
)
def test_from_wire_rejects_malformed(cls_factory: Any, edit: Any, code: str) -> None:
    cls, factory = cls_factory
    wire = factory().to_wire()
    edit(wire)
    with pytest.raises(ProtocolError) as info:
        cls.from_wire(wire)
    assert info.value.code == code


@pytest.mark.parametrize("cls", [SignedTask, ResultEnvelope])
@pytest.mark.parametrize("thing", [None, [], "x", 1, b"bytes", {1: 2}])
def test_from_wire_rejects_non_dicts(cls: Any, thing: Any) -> None:
    with pytest.raises(ProtocolError, match="malformed"):
        cls.from_wire(thing)


def test_envelope_from_wire_rejects_oversized_ciphertext_before_decoding() -> None:
    wire = envelope_example().to_wire()
    wire["ciphertext"] = "A" * (6 * 1024 * 1024)
    with pytest.raises(ProtocolError) as info:
        ResultEnvelope.from_wire(wire)
    assert info.value.code == "too_large"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
b64ish = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=100)


@st.composite
def wire_like(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(fields), unique=True))
    out: dict[str, Any] = {f: draw(st.one_of(json_values, b64ish, st.just(1))) for f in chosen}
    out.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return out


@given(st.one_of(json_values, wire_like(SignedTask._WIRE_FIELDS), wire_like(ResultEnvelope._WIRE_FIELDS)))
@settings(max_examples=300, deadline=None)
def test_from_wire_never_crashes(data: Any) -> None:
    for cls in (SignedTask, ResultEnvelope):
        try:
            msg = cls.from_wire(data)
        except ProtocolError as exc:
            assert exc.code in {"malformed", "bad_version", "bad_base64", "too_large"}
        else:
            assert msg.to_wire() == data


def test_long_detail_is_shortened_not_fatal() -> None:
    result = TrustResult(
        query_id="q1",
        trust_id="t",
        status=ResultStatus.ERROR,
        threshold=10,
        produced_at=NOW,
        detail="x" * 5000,
    )
    assert result.detail is not None and len(result.detail) == 1000 and result.detail.endswith("...")
