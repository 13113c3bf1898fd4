"""What the trust does with one message from its queue: verify, deduplicate, answer, seal, audit, reply.

Kept apart from Celery so it can be read (and tested) as a plain object: the Celery task in
``trust_worker.celery_app`` only hands it the wire dict and a function that publishes a reply.

What is published is the sealed ``TrustResult`` and nothing else. How the query ran (elapsed time, the
real cause of a failure) goes to the audit log, a local file the hub never receives; every answer is
stamped with the moment the task was received (``produced_at``), so its timing says nothing either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from omop.crypto import TaskRejected, seal_result, verify_task
from omop.errors import first_line
from omop.protocol import (
    CohortTask,
    PrivacyStatement,
    ProtocolError,
    SignedTask,
    TrustResult,
    parse_task,
)
from omop.states import AuditDecision, ClaimState, ReasonCode, RefusalCode, ResultStatus
from trust_worker.audit_log import AuditLog, sql_hash
from trust_worker.executor import ReaderExecutor
from trust_worker.pipeline import Inadmissible, admit, answer_cohort
from trust_worker.policy_file import TrustPolicy
from trust_worker.task_ledger import Charge, TaskLedger

log = logging.getLogger("omopfed.trust")

Publish = Callable[[dict[str, Any]], None]

# Codes after which the hub's signature is known good, so the task's own fields can be trusted enough to
# send the hub an answer saying why nothing ran.
_ANSWERABLE = {RefusalCode.EXPIRED, RefusalCode.NOT_YET_VALID}


@dataclass
class TrustRuntime:
    trust_id: str
    hub_verify_key: Ed25519PublicKey
    hub_encryption_key: X25519PublicKey
    trust_signing_key: Ed25519PrivateKey
    policy: TrustPolicy
    executor: ReaderExecutor
    ledger: TaskLedger
    audit: AuditLog

    def handle(self, wire: Any, publish: Publish) -> AuditDecision:
        """Process one task message; returns the audit decision (for logs and tests)."""
        received = datetime.now(UTC)
        try:
            signed = SignedTask.from_wire(wire)
        except ProtocolError as exc:
            self.audit.append(
                query_id="?",
                project_id=None,
                sql=None,
                decision=AuditDecision.REFUSED,
                detail=f"malformed task message: {exc}",
            )
            log.warning("refused a malformed task message: %s", exc)
            return AuditDecision.REFUSED
        try:
            task = verify_task(signed, self.hub_verify_key, expected_trust_id=self.trust_id, now=received)
        except TaskRejected as exc:
            return self._refuse(signed, exc, publish, received)

        claim = self.ledger.claim(task.query_id, task.expires_at, self._charge(task))
        if claim.state is ClaimState.DONE:
            assert claim.envelope is not None
            self._deliver(task.query_id, claim.envelope, publish)
            self.audit.append(
                query_id=task.query_id,
                project_id=task.project_id,
                sql=task.sql,
                decision=AuditDecision.RESENT,
                detail="already answered; re-sent the stored answer",
            )
            return AuditDecision.RESENT
        if claim.state is ClaimState.INTERRUPTED:
            detail = "an earlier delivery of this query was interrupted; it is not run twice, resubmit it"
            failed = self._without_figures(task, ResultStatus.ERROR, ReasonCode.INTERRUPTED, detail, received)
            return self._reply(failed, task, None, publish)

        if claim.over_budget:
            eps = self.policy.privacy.epsilon_per_query
            detail = (
                f"the privacy budget of project {task.project_id!r} at this trust is spent "
                f"({claim.budget_left or 0:.4g} left, a query needs {eps:g}); "
                "the trust's governance team can grant more"
            )
            return self._reply(
                self._without_figures(
                    task, ResultStatus.REJECTED, ReasonCode.BUDGET_EXHAUSTED, detail, received
                ),
                task,
                None,
                publish,
            )
        try:
            answer = answer_cohort(
                task.sql,
                query_id=task.query_id,
                trust_id=self.trust_id,
                project_id=task.project_id,
                policy=self.policy,
                executor=self.executor,
                numeric=task.numeric,
                received_at=received,
                budget_left=claim.budget_left,
            )
        except Exception:  # a bug must still produce an answer, never a silently lost query
            log.exception("query %s: internal error in the pipeline", task.query_id)
            detail = "internal error at the trust (see the trust's worker log)"
            failed = self._without_figures(
                task, ResultStatus.ERROR, ReasonCode.INTERNAL_ERROR, detail, received
            )
            return self._reply(failed, task, None, publish)
        return self._reply(answer.result, task, answer.executed_sql, publish, answer.execution)

    def _charge(self, task: CohortTask) -> Charge | None:
        """What the query costs its project: nothing in exact mode or when it is refused before any data
        is read (the same checks ``answer_cohort`` makes first), else the policy's epsilon per query."""
        privacy = self.policy.privacy
        if not privacy.dp:
            return None
        try:
            admit(task.sql, task.project_id, task.numeric, self.policy)
        except Inadmissible:
            return None
        return Charge(task.project_id, float(privacy.epsilon_per_query), float(privacy.budget_per_project))

    def _without_figures(
        self, task: CohortTask, status: ResultStatus, code: str, detail: str, received: datetime
    ) -> TrustResult:
        """An answer that carries only a status and why: interrupted, internal error, expired task.

        Stamped with the time the task was received, like every answer, never with the time of failure.
        """
        return TrustResult(
            query_id=task.query_id,
            trust_id=self.trust_id,
            status=status,
            reason_code=code,
            detail=detail,
            threshold=self.policy.effective_threshold,
            produced_at=received,
            privacy=PrivacyStatement(mode=self.policy.privacy.mode),
        )

    def _reply(
        self,
        result: TrustResult,
        task: CohortTask,
        executed_sql: str | None,
        publish: Publish,
        execution: dict[str, Any] | None = None,
    ) -> AuditDecision:
        envelope = seal_result(result, self.hub_encryption_key, self.trust_signing_key)
        self.ledger.finish(result.query_id, json.dumps(envelope.to_wire()))
        released = result.model_dump(mode="json", exclude={"version", "query_id", "trust_id", "produced_at"})
        decision = AuditDecision(result.status)
        self.audit.append(
            query_id=result.query_id,
            project_id=task.project_id,
            sql=task.sql,
            decision=decision,
            detail=result.detail,
            released=released,
            execution=execution,
            extra={"executed_sql_sha256": _sha(executed_sql)},
        )
        self._deliver(result.query_id, json.dumps(envelope.to_wire()), publish)
        failure = (execution or {}).get("failure")
        if failure is not None:
            log.warning("query %s: %s (%s)", result.query_id, result.status, failure["description"])
        else:
            log.info("query %s: %s", result.query_id, result.status)
        return decision

    def _deliver(self, query_id: str, sealed: str, publish: Publish) -> None:
        """Publish a sealed answer kept in the ledger; if the broker cannot take it now, it stays there and
        ``republish_pending`` sends it later (no answer is lost to a broker outage)."""
        try:
            publish(json.loads(sealed))
        except Exception as exc:
            log.warning("query %s: answer kept for re-sending (%s)", query_id, first_line(exc))
            return
        self.ledger.mark_published(query_id)

    def _refuse(
        self, signed: SignedTask, exc: TaskRejected, publish: Publish, received: datetime
    ) -> AuditDecision:
        task = parse_task(signed.payload) if exc.code in _ANSWERABLE | {RefusalCode.MISADDRESSED} else None
        self.audit.append(
            query_id=task.query_id if task else "?",
            project_id=task.project_id if task else None,
            sql=task.sql if task else None,
            decision=AuditDecision.REFUSED,
            detail=f"{exc.code}: {exc}",
        )
        log.warning("refused a task (%s): %s", exc.code, exc)
        if task is None or exc.code not in _ANSWERABLE:
            return AuditDecision.REFUSED
        claim = self.ledger.claim(task.query_id, task.expires_at)
        if claim.state is not ClaimState.NEW:
            return AuditDecision.REFUSED
        answer = self._without_figures(task, ResultStatus.REJECTED, exc.code, str(exc), received)
        return self._reply(answer, task, None, publish)


def republish_pending(ledger: TaskLedger, publish: Publish, now: datetime | None = None) -> int:
    """Send again every answer the broker has not taken (oldest first); returns how many went out.

    Stops at the first failure: the broker is still unavailable, and the rest waits for the next round.
    """
    sent = 0
    for query_id, sealed in ledger.unpublished(now or datetime.now(UTC)):
        try:
            publish(json.loads(sealed))
        except Exception:
            break
        ledger.mark_published(query_id)
        sent += 1
    if sent:
        log.info("re-sent %d answer(s) the broker could not take before", sent)
    return sent


def _sha(text: str | None) -> str | None:
    return sql_hash(text) if text is not None else None
