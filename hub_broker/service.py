"""The hub service's request handling, without HTTP: who is asking, may they, and what the answer is.

``hub_broker.api`` is the thin route layer over this (FastAPI, run by ``omopfed hub serve``); everything
that decides something is here, in :class:`HubService`, built with its settings and store injected, and
raises :class:`omop.errors.RequestRefused` (``Refusal`` here: an HTTP status and a one-line
``detail``) for every request it will not serve.

A query submitted through the service goes through exactly the path of ``omopfed hub submit``:
``hub_broker.submit.submit`` pre-checks the SQL, records the query (with its owner, in the same
transaction) and signs and publishes one task per trust with the hub keys, which only this process (and
the operator on the hub host) holds. Every refusal of this module happens *before* that call, or is the
pre-check's own refusal, so a refused request records nothing and publishes nothing.

**The reducer stays a separate process** (``omopfed hub reducer``), reading the same store. Answers arrive
whenever the trusts finish, not when a researcher asks: the reducer must keep consuming them, and
finalising queries at their deadline, while the API is restarted, upgraded or down, and the API must keep
taking submissions and serving reports while the reducer restarts (answers wait on the broker meanwhile).
Tying them into one process would make each one's outage the other's, and put the reducer's long-running
loop in a web server's event loop. The store is the only thing they share, and it was built for several
processes (one short transaction per method, ``save_pooled`` writes a final state once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text

from hub_broker.accounts import Accounts, Researcher, bearer_token, can_see, can_submit, check_project_id
from hub_broker.finalize import finalize_if_due
from hub_broker.report import query_report
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from hub_broker.submit import submit
from omop.errors import OmopFedError, UsageError, first_invalid
from omop.errors import RequestRefused as Refusal
from omop.numeric_spec import NumericRequest

MAX_BODY_BYTES = 256 * 1024
MAX_LIST_LIMIT = 500
UNKNOWN_QUERY = "unknown query id"


class SubmitBody(BaseModel):
    """The body of ``POST /v1/queries``."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, description="The cohort SQL (the query policy of docs/query-policy.md).")
    project: str = Field(description="A project the researcher is a member of; the trusts check it too.")
    trusts: list[str] | None = Field(
        default=None, min_length=1, description="Trust ids to ask (default: every registered trust)."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, le=86400, description="Seconds to wait for the trusts (default: the hub's)."
    )
    numeric: NumericRequest | None = Field(
        default=None,
        description='Numeric statistics, as in a task: {"columns": [...] or null, "histograms": {...}}.',
    )


@dataclass
class HubService:
    settings: HubSettings
    store: HubStore
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.store)

    # -- who is asking --------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Researcher:
        """The researcher an ``Authorization`` header names; 401 for none, a wrong or a disabled token."""
        token = bearer_token(authorization)
        if token is None:
            raise Refusal(401, "missing bearer token (Authorization: Bearer <token>)")
        researcher = self.accounts.authenticate(token)
        if researcher is None:
            raise Refusal(401, "invalid or disabled token")
        return researcher

    # -- POST /v1/queries -----------------------------------------------------------------------------------

    def check_size(self, declared: str | None) -> None:
        """413 when the declared ``Content-Length`` is over the limit (the route counts what it reads too)."""
        if declared is None:
            return
        try:
            size = int(declared)
        except ValueError:
            raise Refusal(400, "invalid Content-Length") from None
        if size > self.max_body_bytes:
            raise self.too_large()

    def too_large(self) -> Refusal:
        return Refusal(413, f"request body over {self.max_body_bytes} bytes")

    def parse_submission(self, raw: bytes) -> SubmitBody:
        if len(raw) > self.max_body_bytes:
            raise self.too_large()
        try:
            return SubmitBody.model_validate_json(raw)
        except ValidationError as exc:
            problem = first_invalid(exc)
            raise Refusal(400, f"invalid body: {problem.where('body')}: {problem.message}") from None

    def submit(self, researcher: Researcher, body: SubmitBody) -> dict[str, Any]:
        """Check the project, then the whole of ``hub submit``: 202's ``{"query_id"}``, or a refusal."""
        try:
            check_project_id(body.project)
        except UsageError as exc:
            raise Refusal(400, str(exc)) from None
        if not can_submit(researcher, body.project):
            raise Refusal(403, f"you are not a member of project {body.project!r}")
        try:
            sub = submit(
                self.settings,
                self.store,
                sql=body.sql,
                trusts=body.trusts,
                timeout_s=body.timeout_s,
                project_id=body.project,
                numeric=body.numeric,
                submitted_by=researcher.user_id,
            )
        except UsageError as exc:  # the pre-check, unknown trusts, a bad numeric request
            raise Refusal(400, str(exc)) from None
        except OmopFedError as exc:  # the broker unreachable or full, the store unavailable, a key file
            raise Refusal(503, str(exc)) from None
        return {"query_id": sub.query_id}

    # -- GET /v1/queries/{id} and /v1/queries ---------------------------------------------------------------

    def report(self, researcher: Researcher, query_id: str) -> dict[str, Any]:
        """Exactly ``query_report`` (what ``hub submit --json`` prints); 404 for an id the researcher may not
        see, worded as for an id that does not exist."""
        if len(query_id) > 64 or not can_see(researcher, self.accounts.owner_of(query_id)):
            raise Refusal(404, UNKNOWN_QUERY)
        query = finalize_if_due(self.store, query_id)
        if query is None:
            raise Refusal(404, UNKNOWN_QUERY)
        return query_report(query)

    def list_queries(self, researcher: Researcher, limit: int, offset: int) -> dict[str, Any]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise Refusal(400, f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if offset < 0:
            raise Refusal(400, "offset must be 0 or more")
        rows = self.accounts.queries_of(researcher, limit=limit, offset=offset)
        return {"queries": [r.to_json() for r in rows], "limit": limit, "offset": offset}

    # -- GET /healthz ---------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``ok`` when the store answers; a 503 otherwise. Says nothing else (no counts, no versions)."""
        try:
            with self.store.session() as s:
                s.execute(text("SELECT 1"))
        except OmopFedError:
            raise Refusal(503, "the hub store is unavailable") from None
        return {"status": "ok"}
