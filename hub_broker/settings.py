"""Settings of the hub, from ``OMOPFED_*`` variables and env files (see ``omop.settings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from omop.settings import OmopFedSettings


class HubSettings(OmopFedSettings):
    """What the hub commands need; each field is ``OMOPFED_<NAME>`` in the environment."""

    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis, as the hub's ACL user.")
    hub_store_url: str = Field(
        default="sqlite:///omopfed-hub.db", description="SQLAlchemy URL of the hub store."
    )
    hub_keys_dir: Path = Field(
        default=Path("hub-keys"), description="Hub private keys and registered trusts."
    )
    threshold: int = Field(default=10, ge=10, description="Disclosure threshold for pooled figures (>= 10).")
    default_timeout_s: float = Field(default=60.0, gt=0, le=86400, description="Per-query deadline.")
    task_expiry_margin_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="A task stays valid until its query's deadline plus this; a later trust refuses it.",
    )
    extra_allowed_functions: list[str] = Field(
        default_factory=list,
        description="Functions the hub's pre-check accepts beyond the built-in allowlist (JSON list); set "
        "it to what the trusts' policies allow, or the hub refuses queries the trusts would run.",
    )
    ready_file: Path | None = Field(default=None, description="Touched once the reducer consumes.")
