"""Settings sources: environment, env files, command-line overrides and ``OMOPFED_<NAME>_FILE`` values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from omop import settings as settings_mod
from omop.errors import UsageError
from omop.settings import OmopFedSettings, load, use_env_file


class DemoSettings(OmopFedSettings):
    broker_url: str = "redis://default"
    threshold: int = Field(default=10, ge=10)
    policy_file: Path | None = None
    state_dir: Path = Path("state")


@pytest.fixture(autouse=True)
def clean_sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No developer OMOPFED_* variables and no env files registered by other tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("OMOPFED_"):
            monkeypatch.delenv(name)
    saved = list(settings_mod._env_files)
    settings_mod._env_files.clear()
    yield
    settings_mod._env_files[:] = saved


def secret(tmp_path: Path, text: str, name: str = "value") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_variable_in_the_environment_gives_the_file_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMOPFED_BROKER_URL_FILE", str(secret(tmp_path, "redis://u:p@h:6379/0\n")))
    monkeypatch.setenv("OMOPFED_THRESHOLD_FILE", str(secret(tmp_path, "12", "t")))
    got = load(DemoSettings)
    assert got.broker_url == "redis://u:p@h:6379/0"  # trailing newline removed
    assert got.threshold == 12  # the file's text is validated like any other value


def test_file_variable_in_an_env_file(tmp_path: Path) -> None:
    env = tmp_path / "x.env"
    env.write_text(f'OMOPFED_BROKER_URL_FILE="{secret(tmp_path, "redis://from-file")}"\n')
    use_env_file(env)
    assert load(DemoSettings).broker_url == "redis://from-file"


def test_precedence_override_then_environment_then_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "x.env"
    env.write_text("OMOPFED_BROKER_URL=redis://env-file\n")
    use_env_file(env)
    monkeypatch.setenv("OMOPFED_BROKER_URL_FILE", str(secret(tmp_path, "redis://environment-file")))
    assert load(DemoSettings).broker_url == "redis://environment-file"  # environment beats the env file
    assert load(DemoSettings, broker_url="redis://cli").broker_url == "redis://cli"  # the option wins


def test_plain_environment_variable_beats_a_file_variable_in_an_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "x.env"
    env.write_text(f"OMOPFED_BROKER_URL_FILE={secret(tmp_path, 'redis://from-file')}\n")
    use_env_file(env)
    monkeypatch.setenv("OMOPFED_BROKER_URL", "redis://environment")
    assert load(DemoSettings).broker_url == "redis://environment"


def test_both_forms_at_the_same_level_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMOPFED_BROKER_URL", "redis://a")
    monkeypatch.setenv("OMOPFED_BROKER_URL_FILE", str(secret(tmp_path, "redis://b")))
    with pytest.raises(UsageError, match="both OMOPFED_BROKER_URL and OMOPFED_BROKER_URL_FILE"):
        load(DemoSettings)


def test_both_forms_in_one_env_file_are_refused(tmp_path: Path) -> None:
    env = tmp_path / "x.env"
    env.write_text(f"OMOPFED_BROKER_URL=redis://a\nOMOPFED_BROKER_URL_FILE={secret(tmp_path, 'b')}\n")
    use_env_file(env)
    with pytest.raises(UsageError, match="give only one"):
        load(DemoSettings)


def test_a_field_named_like_a_file_variable_keeps_its_meaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OMOPFED_POLICY_FILE is the policy_file field itself, not "policy, read from a file"
    monkeypatch.setenv("OMOPFED_POLICY_FILE", "/etc/omopfed/policy.toml")
    assert load(DemoSettings).policy_file == Path("/etc/omopfed/policy.toml")
    monkeypatch.delenv("OMOPFED_POLICY_FILE")
    monkeypatch.setenv("OMOPFED_POLICY_FILE_FILE", str(secret(tmp_path, "/srv/p.toml")))
    assert load(DemoSettings).policy_file == Path("/srv/p.toml")


def test_lower_case_file_variable_works_like_the_plain_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("omopfed_state_dir_file", str(secret(tmp_path, "/var/lib/x")))
    assert load(DemoSettings).state_dir == Path("/var/lib/x")


def test_unknown_file_variables_are_ignored_like_unknown_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMOPFED_NO_SUCH_SETTING_FILE", "/nonexistent")
    assert load(DemoSettings).broker_url == "redis://default"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: str(p / "missing"), "cannot read"),
        (lambda p: str(p), "cannot read"),  # a directory
        (lambda p: "", "is empty"),
        (lambda p: str(secret(p, "x" * (70 * 1024))), "larger than 64 KiB"),
        (lambda p: (p / "bin").write_bytes(b"\xff\xfe\x00") and str(p / "bin"), "not UTF-8"),
    ],
)
def test_unreadable_file_is_a_one_line_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, message: str
) -> None:
    monkeypatch.setenv("OMOPFED_BROKER_URL_FILE", make(tmp_path))  # type: ignore[operator]
    with pytest.raises(UsageError, match=message) as info:
        load(DemoSettings)
    assert "\n" not in str(info.value) and "OMOPFED_BROKER_URL_FILE" in str(info.value)


def test_invalid_value_from_a_file_is_reported_by_setting_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMOPFED_THRESHOLD_FILE", str(secret(tmp_path, "9")))
    with pytest.raises(UsageError, match="invalid setting threshold"):
        load(DemoSettings)


@settings(max_examples=60, deadline=None)
@given(value=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=200))
def test_any_single_line_value_round_trips_through_a_file(value: str) -> None:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v"
        path.write_text(value + "\n", encoding="utf-8")
        os.environ["OMOPFED_BROKER_URL_FILE"] = str(path)
        try:
            assert load(DemoSettings).broker_url == value
        finally:
            del os.environ["OMOPFED_BROKER_URL_FILE"]
