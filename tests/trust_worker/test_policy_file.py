"""The trust policy file: defaults, the shipped example, and one clear line for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omop.errors import UsageError
from omop.sql_policy import QueryRejected, validate
from trust_worker.policy_file import TrustPolicy, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "omopfed" / "examples" / "trust-policy.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UsageError) as info:
        load_policy(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_no_file_means_defaults() -> None:
    policy = load_policy(None)
    assert policy == TrustPolicy()
    assert policy.threshold == 10
    assert policy.effective_threshold == 10
    assert policy.statement_timeout_s == 30
    assert policy.max_query_bytes == 10240
    assert policy.allowed_projects == ()


def test_shipped_example_loads_and_equals_the_defaults() -> None:
    assert load_policy(EXAMPLE) == TrustPolicy()


def test_full_policy_is_read(tmp_path: Path) -> None:
    policy = load_policy(
        _write(
            tmp_path,
            "threshold = 15\nstatement_timeout_s = 2.5\nlock_timeout_s = 1\n"
            "idle_in_transaction_timeout_s = 10\nmax_query_bytes = 4096\n"
            'extra_allowed_functions = ["to_json", "to_json"]\nallowed_projects = ["flip", "gi-bleed"]\n',
        )
    )
    assert policy.threshold == policy.effective_threshold == 15
    assert policy.statement_timeout_s == 2.5
    assert policy.lock_timeout_s == 1
    assert policy.extra_allowed_functions == ("to_json",)
    assert policy.allowed_projects == ("flip", "gi-bleed")


def test_query_policy_carries_the_file_settings(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, 'max_query_bytes = 300\nextra_allowed_functions = ["to_json"]\n'))
    qp = policy.query_policy()
    assert qp.max_bytes == 300
    validate("SELECT p.person_id, to_json(p.year_of_birth) AS j FROM omop.person p", qp)
    with pytest.raises(QueryRejected) as info:
        validate(
            "SELECT p.person_id FROM omop.person p WHERE p.gender_source_value = '" + "x" * 300 + "'", qp
        )
    assert info.value.code == "too_large"


def test_removed_series_key_is_refused_as_unknown(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="max_series_rows: unknown key"):
        load_policy(_write(tmp_path, "max_series_rows = 500\n"))


def test_empty_project_list_allows_every_project_and_a_list_restricts() -> None:
    assert TrustPolicy().project_allowed("anything")
    assert TrustPolicy().project_allowed(None)
    restricted = TrustPolicy(allowed_projects=("flip",))
    assert restricted.project_allowed("flip")
    assert not restricted.project_allowed("other")
    assert not restricted.project_allowed(None)


@pytest.mark.parametrize("value", [9, 5, 0, -1])
def test_threshold_below_ten_is_refused_at_load(tmp_path: Path, value: int) -> None:
    message = _error(tmp_path, f"threshold = {value}\n")
    assert "threshold" in message and "at least 10" in message
    assert str(tmp_path / "policy.toml") in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read policy file .*nope.toml: not found"):
        load_policy(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        load_policy(tmp_path)


def test_bad_toml(tmp_path: Path) -> None:
    assert "is not valid TOML" in _error(tmp_path, "threshold = [\n")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b"threshold = 10 # \xff\xfe\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_policy(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, "treshold = 12\n")
    assert "treshold: unknown key" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('threshold = "12"\n', "threshold"),
        ("threshold = 12.0\n", "threshold"),
        ("threshold = true\n", "threshold"),
        ('statement_timeout_s = "30"\n', "statement_timeout_s"),
        ("statement_timeout_s = 0\n", "statement_timeout_s"),
        ("statement_timeout_s = 99999\n", "statement_timeout_s"),
        ("lock_timeout_s = -1\n", "lock_timeout_s"),
        ("max_query_bytes = 10\n", "max_query_bytes"),
        ('extra_allowed_functions = "to_json"\n', "extra_allowed_functions"),
        ("extra_allowed_functions = [1]\n", "extra_allowed_functions[0]"),
        ('allowed_projects = [""]\n', "allowed_projects"),
        ('allowed_projects = [" flip"]\n', "allowed_projects"),
    ],
)
def test_wrong_types_and_ranges_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    message = _error(tmp_path, text)
    assert f": {key}: " in message


@pytest.mark.parametrize(
    "name", ["pg_sleep", "dblink", "lo_import", "set_config", "current_setting", "public.f"]
)
def test_dangerous_extra_functions_are_refused(tmp_path: Path, name: str) -> None:
    message = _error(tmp_path, f'extra_allowed_functions = ["{name}"]\n')
    assert "extra_allowed_functions" in message and name in message


def test_policy_is_immutable() -> None:
    with pytest.raises(ValidationError):
        TrustPolicy().threshold = 5  # type: ignore[misc]


def test_work_mem_reaches_the_executor_limits(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("work_mem_mb = 128\nstatement_timeout_s = 12\n")
    limits = load_policy(path).limits()
    assert (limits.work_mem_mb, limits.statement_timeout_s) == (128, 12)
    path.write_text("work_mem_mb = 1\n")
    with pytest.raises(UsageError, match="work_mem_mb"):
        load_policy(path)


def test_temp_file_limit_reaches_the_executor_limits(tmp_path: Path) -> None:
    assert TrustPolicy().limits().temp_file_limit_mb == 1024
    assert load_policy(_write(tmp_path, "temp_file_limit_mb = 256\n")).limits().temp_file_limit_mb == 256


@pytest.mark.parametrize("value", ["0", "-1", "1048577", '"512"', "512.5"])
def test_nonsense_temp_file_limit_is_refused(tmp_path: Path, value: str) -> None:
    assert "temp_file_limit_mb" in _error(tmp_path, f"temp_file_limit_mb = {value}\n")


def test_privacy_defaults_to_dp_with_documented_settings() -> None:
    privacy = TrustPolicy().privacy
    assert privacy.dp and privacy.mode == "dp"
    assert (privacy.epsilon_per_query, privacy.budget_per_project) == (1.0, 10.0)
    assert (privacy.max_rows_per_person, privacy.max_histogram_bins, privacy.bounds) == (10, 100, {})


def test_privacy_table_is_read(tmp_path: Path) -> None:
    policy = load_policy(
        _write(
            tmp_path,
            '[privacy]\nmode = "exact"\nepsilon_per_query = 0.5\nbudget_per_project = 4\n'
            "max_rows_per_person = 3\nmax_histogram_bins = 20\n[privacy.bounds]\nbmi = [10, 70.5]\n",
        )
    )
    assert not policy.privacy.dp
    assert policy.privacy.epsilon_per_query == 0.5 and policy.privacy.budget_per_project == 4
    assert policy.privacy.bounds == {"bmi": (10.0, 70.5)}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[privacy]\nmode = "noisy"\n', 'privacy.mode: must be "dp" or "exact"'),
        ("[privacy]\nmode = 1\n", 'privacy.mode: must be "dp" or "exact"'),
        ("[privacy]\nepsilon_per_query = 0\n", "privacy.epsilon_per_query: Input should be greater than 0"),
        ("[privacy]\nepsilon_per_query = 11\n", "privacy.epsilon_per_query: Input should be less than"),
        ('[privacy]\nepsilon_per_query = "1"\n', "privacy.epsilon_per_query"),
        ("[privacy]\nepsilon_per_query = nan\n", "privacy.epsilon_per_query"),
        ("[privacy]\nbudget_per_project = 0.5\n", "cannot pay for one query"),
        ("[privacy]\nmax_rows_per_person = 0\n", "privacy.max_rows_per_person"),
        ("[privacy]\nmax_histogram_bins = 5000\n", "privacy.max_histogram_bins"),
        ("[privacy]\nepsilon = 1\n", "privacy.epsilon: unknown key"),
        ("[privacy.bounds]\nbmi = [70, 10]\n", "bmi: lower bound 70 must be below the upper bound 10"),
        ("[privacy.bounds]\nbmi = [0, 1e12]\n", "bmi: bounds must be finite numbers within"),
        ("[privacy.bounds]\nbmi = [0, inf]\n", "bmi: bounds must be finite numbers within"),
        ('[privacy.bounds]\nbmi = [0, "9"]\n', "privacy.bounds"),
        ("[privacy.bounds]\nbmi = [1, 2, 3]\n", "privacy.bounds"),
    ],
)
def test_nonsense_privacy_settings_are_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    assert needle in _error(tmp_path, text)
