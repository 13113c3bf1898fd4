"""The trust policy: the hospital's own rules for what its worker may run and release (a TOML file).

Owned by the trust's information-governance team, never by the hub: the hub cannot loosen any of it.
Without a file the defaults below apply (threshold 10, 30 s statement timeout, 1 GiB of temporary files
per query, 10 KiB query cap, every project). ``limits()`` is the only source of the executor's
per-statement limits: the worker, ``omopfed trust check`` and ``answer_cohort`` all run under it.
Mistakes are refused at start-up rather than papered over, so they are noticed:

* a threshold below 10 is an error, not silently raised to 10;
* an unknown key is an error (``treshold = 5`` must not leave the default in force unnoticed);
* values must have the right TOML type (``threshold = "12"`` is an error, not a string that happens to
  parse), and an extra allowed function that reaches outside the data (``pg_*``, ``dblink``, ``lo_*``,
  ``set_config``...) can never be added.

``allowed_projects``: an empty list means the trust answers every project the hub sends; a non-empty list
restricts it to those project ids. Empty-means-all keeps a fresh install working with one less step; a
trust that wants an explicit allowlist simply lists its projects.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from omop.disclosure import check_threshold, effective_threshold
from omop.errors import UsageError, first_invalid
from omop.numeric_spec import MAX_BINS, MAX_BOUND
from omop.sql_policy import QueryPolicy, refusal_reason
from omop.sql_policy.policy import DEFAULT_MAX_BYTES
from omop.states import PrivacyMode
from omop.user_input import read_text
from trust_worker.executor import Limits

Seconds = Annotated[StrictFloat | StrictInt, Field(gt=0, le=3600)]
Epsilon = Annotated[StrictFloat | StrictInt, Field(gt=0)]

#: Largest privacy loss one query may spend: beyond it the noise protects next to nothing.
MAX_EPSILON_PER_QUERY = 10.0
#: Largest total a project may be given by the policy (grants can add more, each one audited).
MAX_BUDGET_PER_PROJECT = 1000.0


class PrivacyPolicy(BaseModel):
    """The ``[privacy]`` table: differential privacy (the default) or exact figures, and its settings.

    Defaults, and why (docs/privacy.md says more):

    * ``epsilon_per_query = 1.0``: one query's answer changes the odds of any guess about one person by at
      most e^1 = 2.7x; the person count of a cohort of 500 is then off by about 3 on average.
    * ``budget_per_project = 10.0``: ten such queries per project and trust, after which the odds bound is
      e^10 and the trust's governance team decides (``omopfed trust budget grant``, audited).
    * ``max_rows_per_person = 10``: row counts count at most 10 rows per person, so one person's records
      move a row count by at most 10 and the noise can be calibrated to that.
    * ``max_histogram_bins = 100``: a finer grid spreads the same privacy loss over more, mostly empty,
      noisy cells.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: PrivacyMode = Field(default=PrivacyMode.DP, description='"dp" (noise and a budget) or "exact".')
    epsilon_per_query: Epsilon = Field(default=1.0, le=MAX_EPSILON_PER_QUERY)
    budget_per_project: Epsilon = Field(default=10.0, le=MAX_BUDGET_PER_PROJECT)
    max_rows_per_person: StrictInt = Field(default=10, ge=1, le=10_000)
    max_histogram_bins: StrictInt = Field(default=100, ge=1, le=MAX_BINS)
    bounds: dict[StrictStr, tuple[StrictFloat | StrictInt, StrictFloat | StrictInt]] = Field(
        default_factory=dict, description="Numeric bounds allowed per feature: name = [lower, upper]."
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_named(cls, value: object) -> object:
        if value not in tuple(PrivacyMode):
            raise ValueError(f'must be "dp" or "exact", not {value!r}')
        return value

    @field_validator("bounds")
    @classmethod
    def _bounds_sensible(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (lower, upper) in value.items():
            if not all(math.isfinite(v) and abs(v) <= MAX_BOUND for v in (lower, upper)):
                raise ValueError(f"{name}: bounds must be finite numbers within +/-{MAX_BOUND:g}")
            if lower >= upper:
                raise ValueError(f"{name}: lower bound {lower:g} must be below the upper bound {upper:g}")
        return {name: (float(lo), float(hi)) for name, (lo, hi) in value.items()}

    @model_validator(mode="after")
    def _budget_pays_for_a_query(self) -> PrivacyPolicy:
        if self.budget_per_project < self.epsilon_per_query:
            raise ValueError(
                f"budget_per_project {self.budget_per_project:g} cannot pay for one query "
                f"(epsilon_per_query {self.epsilon_per_query:g})"
            )
        return self

    @property
    def dp(self) -> bool:
        return self.mode is PrivacyMode.DP


class TrustPolicy(BaseModel):
    """Every key of the policy file; unknown keys are an error (a typo must not weaken a rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: StrictInt = Field(
        default=10, description="Minimum distinct persons per released figure (>= 10)."
    )
    statement_timeout_s: Seconds = Field(default=30.0, description="Cancel a query running longer than this.")
    lock_timeout_s: Seconds = Field(default=5.0, description="Give up waiting for a lock after this.")
    idle_in_transaction_timeout_s: Seconds = Field(default=60.0, description="End idle transactions.")
    work_mem_mb: StrictInt = Field(
        default=64,
        ge=4,
        le=4096,
        description="Memory per sort or hash step before it spills to disk.",
    )
    temp_file_limit_mb: StrictInt = Field(
        default=1024,
        ge=1,
        le=1024 * 1024,
        description="Temporary file space (sorts, hashes, materialised steps spilled to disk) per query.",
    )
    ledger_retention_days: StrictInt = Field(
        default=30,
        ge=8,  # longer than a task can live (7 days): a pruned query id can never be replayed
        le=3650,
        description="How long the executed-query ledger keeps a finished query (replay defence, re-sends).",
    )
    max_query_bytes: StrictInt = Field(default=DEFAULT_MAX_BYTES, ge=256, le=1024 * 1024)
    extra_allowed_functions: tuple[StrictStr, ...] = Field(
        default=(), description="Functions added to the allowlist."
    )
    allowed_projects: tuple[StrictStr, ...] = Field(
        default=(), description="Projects this trust answers; empty means every project."
    )
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)

    @field_validator("threshold")
    @classmethod
    def _threshold_floor(cls, value: int) -> int:
        try:
            return check_threshold(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("extra_allowed_functions")
    @classmethod
    def _functions_allowed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            reason = refusal_reason(name)
            if reason is not None:
                raise ValueError(f"{name!r} {reason}")
        return tuple(dict.fromkeys(value))

    @field_validator("allowed_projects")
    @classmethod
    def _projects_named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for project in value:
            if not project.strip() or project != project.strip():
                raise ValueError(f"project id {project!r} must be non-empty without surrounding spaces")
        return tuple(dict.fromkeys(value))

    @property
    def effective_threshold(self) -> int:
        """T = max(10, threshold); equal to ``threshold`` since lower values are refused."""
        return effective_threshold(self.threshold)

    def project_allowed(self, project_id: str | None) -> bool:
        """Whether a task for ``project_id`` may run here (every project when the list is empty)."""
        return not self.allowed_projects or project_id in self.allowed_projects

    def limits(self) -> Limits:
        """The per-statement limits the executor sets for every query."""
        return Limits(
            statement_timeout_s=self.statement_timeout_s,
            lock_timeout_s=self.lock_timeout_s,
            idle_in_transaction_timeout_s=self.idle_in_transaction_timeout_s,
            work_mem_mb=self.work_mem_mb,
            temp_file_limit_mb=self.temp_file_limit_mb,
        )

    def query_policy(self) -> QueryPolicy:
        """The SQL validator's policy built from this file."""
        return QueryPolicy(
            max_bytes=self.max_query_bytes,
            extra_allowed_functions=frozenset(self.extra_allowed_functions),
        )


def load_policy(path: Path | None) -> TrustPolicy:
    """The policy in ``path`` (None: the defaults), or a one-line ``UsageError`` naming file and problem."""
    if path is None:
        return TrustPolicy()
    text = read_text(path, "policy file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"policy file {path} is not valid TOML: {exc}") from None
    try:
        return TrustPolicy.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"policy file {path}: {_describe_error(exc)}") from None


def _describe_error(exc: ValidationError) -> str:
    """``key: problem`` for the first error, in the file's terms (lists, not tuples; no type-union paths)."""
    problem = first_invalid(exc)
    loc = problem.loc
    where = str(loc[0]) if loc else "(top level)"
    if len(loc) > 1 and isinstance(loc[1], int):
        where += f"[{loc[1]}]"
    elif loc and loc[0] == "privacy" and len(loc) > 1:
        where = "privacy." + ".".join(str(part) for part in loc[1:] if not str(part).isdigit())
    if problem.kind == "extra_forbidden":
        return f"{where}: unknown key (check the spelling; see the example policy in docs/deploy-trust.md)"
    return f"{where}: {problem.message.replace('valid tuple', 'list')}"
