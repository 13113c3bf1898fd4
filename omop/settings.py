"""Configuration from ``OMOPFED_*`` environment variables and env files (pydantic-settings).

Precedence, highest first: a command-line option, an ``OMOPFED_*`` environment variable, the env file given
with ``--env-file`` (any command accepts it), the default. Each side defines its own settings class on top
of ``OmopFedSettings``; this module only knows where values come from.

Any setting can also be read from a file: ``OMOPFED_<NAME>_FILE=/run/secrets/x`` gives ``<NAME>`` the
file's content (one trailing newline removed). Containers get passwords and URLs that embed them this way,
from Docker/Compose secrets, so no secret ever sits in the environment block that ``docker inspect`` shows.
A ``_FILE`` variable counts at the level it was set (environment or env file); giving both ``OMOPFED_X``
and ``OMOPFED_X_FILE`` at the same level is ambiguous and refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from omop.errors import UsageError, first_invalid
from omop.user_input import read_text

ENV_PREFIX = "OMOPFED_"
FILE_SUFFIX = "_FILE"
MAX_SECRET_FILE_BYTES = 64 * 1024

_env_files: list[Path] = []

S = TypeVar("S", bound="OmopFedSettings")


def read_value_file(variable: str, path: str) -> str:
    """The value held in the file ``path`` named by ``variable`` (trailing newline removed).

    Secret files are small; anything larger than 64 KiB is refused rather than read, so a variable that
    points at the wrong file (a log, a device) fails clearly instead of becoming a setting.
    """
    if not path:
        raise UsageError(f"{variable} is empty; it must name a file")
    text = read_text(Path(path), variable, max_bytes=MAX_SECRET_FILE_BYTES)
    return text.removesuffix("\n").removesuffix("\r")


class FileValueSource(PydanticBaseSettingsSource):
    """Values named by ``OMOPFED_<NAME>_FILE`` variables of one underlying source (environment or env file).

    It reads the variables the wrapped source already parsed (same case rules), so a ``_FILE`` variable in
    an env file and one in the environment each rank exactly where their plain counterparts would.
    """

    def __init__(self, settings_cls: type[BaseSettings], variables: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._source = variables

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping

    def _lookup(self, env: Mapping[str, str | None], name: str) -> str | None:
        key = name if self._source.case_sensitive else name.lower()
        return env.get(key)

    def __call__(self) -> dict[str, Any]:
        env = self._source.env_vars
        fields = self.settings_cls.model_fields
        values: dict[str, Any] = {}
        for name in fields:
            if f"{name}_file" in fields:  # OMOPFED_<NAME>_FILE is then that field's own variable
                continue
            plain = f"{ENV_PREFIX}{name.upper()}"
            variable = plain + FILE_SUFFIX
            path = self._lookup(env, variable)
            if path is None:
                continue
            if self._lookup(env, plain) is not None:
                raise UsageError(f"both {plain} and {variable} are set; give only one of them")
            values[name] = read_value_file(variable, path)
        return values


class OmopFedSettings(BaseSettings):
    """Base for every settings class: ``OMOPFED_`` prefix, unknown variables ignored, ``*_FILE`` values."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_file_encoding="utf-8")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        for source in (env_settings, dotenv_settings):
            sources.append(source)
            if isinstance(source, EnvSettingsSource):  # DotEnvSettingsSource is one too
                sources.append(FileValueSource(settings_cls, source))
        sources.append(file_secret_settings)
        return tuple(sources)


def use_env_file(path: Path) -> None:
    """Make ``path`` a source for every settings object loaded after this call."""
    if not path.is_file():
        raise UsageError(f"env file not found: {path}")
    _env_files.append(path)


def load(cls: type[S], **overrides: object) -> S:
    """Build settings of type ``cls``; ``overrides`` (non-None values only) win over every other source."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls(_env_file=tuple(_env_files) or None, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        problem = first_invalid(exc)
        field = problem.where("settings")
        raise UsageError(f"invalid setting {field} (OMOPFED_{field.upper()}): {problem.message}") from exc
