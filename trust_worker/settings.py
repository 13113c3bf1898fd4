"""Settings of a trust's worker, from ``OMOPFED_*`` variables and env files (see ``omop.settings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from omop.settings import OmopFedSettings


class TrustSettings(OmopFedSettings):
    """What the trust worker needs; each field is ``OMOPFED_<NAME>`` in the environment."""

    trust_id: str | None = Field(default=None, description="This trust's id (queue trust.<id>).")
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="The hub's Redis, with this trust's ACL user."
    )
    reader_db_url: str | None = Field(default=None, description="The OMOP database as data_analyst_reader.")
    keys_dir: Path = Field(
        default=Path("keys"), description="This trust's private key and the pinned hub key."
    )
    policy_file: Path | None = Field(
        default=None, description="The trust policy TOML (defaults apply without one)."
    )
    state_dir: Path = Field(default=Path("trust-state"), description="Executed-query ledger and audit log.")
    ready_file: Path | None = Field(default=None, description="Touched once the worker consumes its queue.")

    def ledger_path(self) -> Path:
        return self.state_dir / "executed.sqlite"

    def audit_path(self) -> Path:
        return self.state_dir / "audit.jsonl"
