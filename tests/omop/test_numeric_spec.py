"""The numeric request: option parsing, grid validation and the round trip through task options."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omop.errors import UsageError
from omop.numeric_spec import (
    MAX_BINS,
    MAX_NUMERIC_COLUMNS,
    OPTION_KEY,
    HistogramSpec,
    NumericRequest,
    is_id_column,
    parse_histogram_option,
    parse_numeric_option,
    precheck_columns,
)
from omop.protocol import CohortTask, canonical_json, parse_task


# -- HistogramSpec ---------------------------------------------------------------------------------------
def test_grid_geometry_and_open_edge_bins() -> None:
    spec = HistogramSpec(lower=15, upper=45, bins=10)
    assert (spec.lower, spec.upper, spec.bins, spec.width) == (15.0, 45.0, 10, 3.0)
    assert [spec.edge(i) for i in range(11)] == [15.0 + 3 * i for i in range(11)]
    assert spec.cell_bounds(0, 0) == (None, 18.0)
    assert spec.cell_bounds(3, 5) == (24.0, 33.0)
    assert spec.cell_bounds(9, 9) == (42.0, None)
    assert spec.cell_bounds(0, 9) == (None, None)
    assert spec.nominal_bounds(0, 9) == (15.0, 45.0)
    assert HistogramSpec(lower=0, upper=1, bins=1).cell_bounds(0, 0) == (None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((45, 15, 10), "must be below the upper bound"),
        ((15, 15, 10), "must be below the upper bound"),
        ((0, 1, 0), "between 1 and 1000"),
        ((0, 1, -3), "between 1 and 1000"),
        ((0, 1, MAX_BINS + 1), "between 1 and 1000"),
        ((0, 1, 2.5), "must be an integer"),
        ((0, 1, True), "must be an integer"),
        ((float("nan"), 1, 10), "finite"),
        ((0, float("inf"), 10), "finite"),
        (("0", 1, 10), "must be a number"),
        ((-1e308, 1e308, 10), "too wide"),
    ],
)
def test_grid_validation_messages(args: tuple[object, object, object], message: str) -> None:
    with pytest.raises(UsageError, match=message) as exc:
        HistogramSpec.build(*args)
    assert "\n" not in str(exc.value)


def test_max_bins_is_accepted() -> None:
    assert HistogramSpec(lower=0, upper=1, bins=MAX_BINS).bins == MAX_BINS


# -- option parsing --------------------------------------------------------------------------------------
def test_parse_histogram_option() -> None:
    assert parse_histogram_option("bmi=15:45:10") == ("bmi", HistogramSpec(lower=15.0, upper=45.0, bins=10))
    assert parse_histogram_option(" hba1c = -1.5 : 2e1 : 7 ") == (
        "hba1c",
        HistogramSpec(lower=-1.5, upper=20.0, bins=7),
    )
    # the column is everything before the last '=' (quoted output names may contain one)
    assert parse_histogram_option("a=b=0:1:2")[0] == "a=b"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("bmi", "expected COLUMN=LOWER:UPPER:BINS"),
        ("=15:45:10", "expected COLUMN=LOWER:UPPER:BINS"),
        ("bmi=15:45", "expected LOWER:UPPER:BINS"),
        ("bmi=15:45:10:2", "expected LOWER:UPPER:BINS"),
        ("bmi=low:45:10", "lower bound 'low' is not a number"),
        ("bmi=15:nan:10", "upper bound must be a finite number"),
        ("bmi=15:inf:10", "upper bound must be a finite number"),
        ("bmi=15:45:ten", "bin count 'ten' is not a positive whole number"),
        ("bmi=15:45:10.5", "not a positive whole number"),
        ("bmi=15:45:-2", "not a positive whole number"),
        ("bmi=15:45:0", "between 1 and 1000"),
        ("bmi=15:45:99999999999", "between 1 and 1000"),
        ("bmi=45:15:10", "must be below the upper bound"),
        ("bmi=15:15:10", "must be below the upper bound"),
    ],
)
def test_parse_histogram_option_errors(option: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as exc:
        parse_histogram_option(option)
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value)


def test_parse_numeric_option() -> None:
    assert parse_numeric_option("bmi,systolic_bp") == (["bmi", "systolic_bp"], {})
    assert parse_numeric_option(" bmi , age ") == (["bmi", "age"], {})
    assert parse_numeric_option("bmi:10:70, age") == (["bmi", "age"], {"bmi": (10.0, 70.0)})
    for bad, message in [
        ("bmi:70:10", "must be below"),
        ("bmi:10", "NAME:LOWER:UPPER"),
        ("bmi:x:70", "not a number"),
        ("bmi:-inf:70", "finite"),
        ("bmi:0:1e12", "finite numbers within"),
        (":1:2", "NAME:LOWER:UPPER"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_numeric_option(bad)
    for bad, message in [("", "comma-separated"), ("bmi,,age", "comma-separated"), ("bmi,bmi", "twice")]:
        with pytest.raises(UsageError, match=message):
            parse_numeric_option(bad)
    too_many = ",".join(f"c{i}" for i in range(MAX_NUMERIC_COLUMNS + 1))
    with pytest.raises(UsageError, match="at most 64"):
        parse_numeric_option(too_many)
    with pytest.raises(UsageError, match="longer than 63 bytes"):
        parse_numeric_option("x" * 64)


def test_id_columns() -> None:
    assert is_id_column("person_id") and is_id_column("visit_occurrence_id")
    assert not is_id_column("bmi") and not is_id_column("idx") and not is_id_column("paid")


# -- NumericRequest --------------------------------------------------------------------------------------
def test_request_from_cli_and_histogram_must_be_requested() -> None:
    request = NumericRequest.from_cli("bmi,age", ["bmi=15:45:10"])
    assert request.columns == ("bmi", "age")
    assert request.histograms == {"bmi": HistogramSpec(lower=15, upper=45, bins=10)}
    assert NumericRequest.from_cli(None, ["bmi=15:45:10"]).columns is None
    with pytest.raises(UsageError, match="not among the --numeric columns"):
        NumericRequest.from_cli("age", ["bmi=15:45:10"])
    with pytest.raises(UsageError, match="two histograms"):
        NumericRequest.from_cli(None, ["bmi=15:45:10", "bmi=0:1:2"])
    with pytest.raises(UsageError, match="at least one column"):
        NumericRequest.build(())


def _task(numeric: NumericRequest | None) -> CohortTask:
    now = datetime.now(UTC)
    return CohortTask(
        query_id="q1",
        trust_id="trust-a",
        sql="SELECT person_id FROM omop.person",
        project_id="p",
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        numeric=numeric,
    )


def test_request_travels_in_the_signed_task_exactly() -> None:
    request = NumericRequest(
        columns=("bmi", "age"), histograms={"bmi": HistogramSpec(lower=0.1, upper=45.3, bins=999)}
    )
    options = request.to_options()  # how the hub store keeps it
    assert set(options) == {OPTION_KEY} and isinstance(options[OPTION_KEY], str)
    task = parse_task(canonical_json(_task(request)))
    back = task.numeric
    assert back == request
    assert back is not None and back.histograms["bmi"].lower == 0.1  # exact float round trip
    assert NumericRequest.from_options({}) is None
    assert NumericRequest.from_options(NumericRequest().to_options()) == NumericRequest()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"columns": null}',
        '{"columns": "bmi", "histograms": {}}',
        '{"columns": null, "histograms": {"bmi": [15, 45]}}',
        '{"columns": null, "histograms": {"bmi": [45, 15, 10]}}',
        '{"columns": null, "histograms": {"bmi": [0, 1, 5000]}}',
        '{"columns": null, "histograms": {"bmi": [0, NaN, 5]}}',
        '{"columns": ["a", "a"], "histograms": {}}',
        '{"columns": [1], "histograms": {}}',
        '{"columns": null, "histograms": [], "extra": 1}',
    ],
)
def test_malformed_options_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        NumericRequest.from_options({OPTION_KEY: text})


def test_option_must_be_a_string() -> None:
    with pytest.raises(UsageError, match="JSON string"):
        NumericRequest.from_options({OPTION_KEY: 3})


@given(
    lower=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-3, 1e6, allow_nan=False),
    bins=st.integers(1, MAX_BINS),
)
def test_grid_round_trips_through_json(lower: float, width: float, bins: int) -> None:
    spec = HistogramSpec(lower=lower, upper=lower + width, bins=bins)
    request = NumericRequest(histograms={"x": spec})
    assert NumericRequest.from_json(json.loads(request.to_options()[OPTION_KEY])) == request
    assert parse_histogram_option(f"x={spec}") == ("x", spec)
    edges = [spec.edge(i) for i in range(bins + 1)]
    assert edges[0] == spec.lower and edges[-1] == spec.upper
    assert all(a <= b for a, b in itertools.pairwise(edges))


def test_hub_precheck_against_output_columns() -> None:
    outputs = ("person_id", "age", "bmi")
    precheck_columns(
        NumericRequest(columns=("age",), histograms={"age": HistogramSpec(lower=0, upper=100, bins=10)}),
        outputs,
    )
    precheck_columns(NumericRequest(histograms={"bmi": HistogramSpec(lower=0, upper=100, bins=10)}), outputs)
    with pytest.raises(UsageError, match="no output column 'weight'"):
        precheck_columns(NumericRequest(columns=("weight",)), outputs)
    with pytest.raises(UsageError, match="no output column 'weight'"):
        precheck_columns(
            NumericRequest(histograms={"weight": HistogramSpec(lower=0, upper=1, bins=2)}), outputs
        )
    with pytest.raises(UsageError, match="person_id identifies persons"):
        precheck_columns(NumericRequest(columns=("person_id",)), outputs)
