"""Configuration from ``OMOPFED_*`` environment variables and env files (pydantic-settings).

Precedence, highest first: a command-line option, an ``OMOPFED_*`` environment variable, the env file given
with ``--env-file`` (any command accepts it), the default. Each side defines its own settings class on top
of ``OmopFedSettings``; this module only knows where values come from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from omop.errors import UsageError

_env_files: list[Path] = []

S = TypeVar("S", bound="OmopFedSettings")


class OmopFedSettings(BaseSettings):
    """Base for every settings class: ``OMOPFED_`` prefix, unknown variables ignored."""

    model_config = SettingsConfigDict(env_prefix="OMOPFED_", extra="ignore", env_file_encoding="utf-8")


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
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise UsageError(f"invalid setting {field} (OMOPFED_{field.upper()}): {first.get('msg')}") from exc
