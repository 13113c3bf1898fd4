"""The trust's answer to one cohort question: policy → re-emit → read-only execution → disclosure control.

Pure decisions (``release_figures``) are separated from the one call that touches PostgreSQL
(``ReaderExecutor.fetch_one``), so the privacy logic is testable without a server and the worker and
``omopfed trust check`` run exactly the same code, under the same limits (``policy.limits()``).

How the query ran (how long it took, why it failed) is kept apart from what is answered: ``Answer.result``
goes to the hub and says nothing about it, ``Answer.execution`` goes only to the trust's audit log.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from omop.demographics import AGE_BANDS, SEX_LABELS, in_order
from omop.disclosure import SUPPRESSED_DETAIL, is_small, protect_distribution, protect_pair
from omop.errors import UsageError
from omop.numeric_disclosure import protect_numeric
from omop.numeric_spec import NumericRequest
from omop.protocol import EXECUTION_FAILED, EXECUTION_FAILED_DETAIL, ColumnCounts, TrustResult
from omop.sql_policy import QueryRejected, ValidatedQuery, validate
from trust_worker.aggregate_sql import cohort_statistics_sql
from trust_worker.executor import ExecutionFailed, Limits, ReaderExecutor
from trust_worker.numeric_sql import (
    NumericRejected,
    column_types_sql,
    numeric_statistics_sql,
    resolve_columns,
)
from trust_worker.policy_file import TrustPolicy


@dataclass(frozen=True)
class Answer:
    """The result to send plus what the audit log needs to know about how it was reached.

    ``execution`` (elapsed time, and the failure's cause, SQLSTATE and exception class when the query
    failed) is for the trust's staff only: it goes to the audit log, never into ``result``.
    """

    result: TrustResult
    executed_sql: str | None
    execution: dict[str, Any] = field(default_factory=dict)


def release_figures(
    *,
    person_count: int,
    row_count: int,
    columns: Mapping[str, list[int]],
    sex: Mapping[str, int],
    age: Mapping[str, int],
    threshold: int,
) -> dict[str, Any]:
    """Apply the disclosure rules to raw in-database aggregates: what may leave the trust, and nothing else.

    Below the threshold (zero included) nothing but the status is released, with the same wording.

    Row-based figures (``row_count`` and the per-column null/non-null pairs, which add up to it) are
    released only when ``row_count - person_count`` is 0 or at least T: otherwise "3 rows more than
    persons" would tell that a handful of persons have extra records. Withheld, they are all withheld
    together, since any one pair would give ``row_count`` back.
    """
    if person_count < threshold:
        return {"status": "suppressed", "detail": SUPPRESSED_DETAIL}
    released_rows: int | None = None
    released_columns: dict[str, ColumnCounts] | None = None
    if not is_small(row_count - person_count, threshold):
        released_rows = row_count
        released_columns = {}
        for name, (non_null, null) in columns.items():
            nn, nl = protect_pair(int(non_null), int(null), threshold)
            released_columns[name] = ColumnCounts(non_null=nn, null=nl)
    return {
        "status": "released",
        "detail": None,
        "person_count": person_count,
        "row_count": released_rows,
        "columns": released_columns,
        "sex": in_order(protect_distribution({k: int(v) for k, v in sex.items()}, threshold), SEX_LABELS),
        "age": in_order(protect_distribution({k: int(v) for k, v in age.items()}, threshold), AGE_BANDS),
    }


def numeric_figures(
    validated: ValidatedQuery,
    request: NumericRequest,
    executor: ReaderExecutor,
    limits: Limits,
    person_count: int,
    threshold: int,
) -> dict[str, dict[str, Any]]:
    """Per-column n, mean, M2 and protected histograms, computed in PostgreSQL, disclosure-controlled.

    Raises ``NumericRejected`` (bad request for this cohort) or ``ExecutionFailed``.
    """
    (types,) = executor.fetch_one(column_types_sql(validated.sql, validated.output_columns), limits)
    columns = resolve_columns(request, validated.output_columns, types)
    (raw,) = executor.fetch_one(numeric_statistics_sql(validated.sql, columns, request.histograms), limits)
    if raw.get("cohort_persons") != person_count:
        # two statements, two snapshots: the data changed in between, and the pair rule needs one count
        raise ExecutionFailed(
            "data_changed", "the cohort's person count changed between the two statements (data changed)"
        )
    return protect_numeric(raw, threshold, request.histograms)


def answer_cohort(
    sql: str,
    *,
    query_id: str,
    trust_id: str,
    project_id: str | None,
    policy: TrustPolicy,
    executor: ReaderExecutor,
    options: Mapping[str, Any] | None = None,
    received_at: datetime | None = None,
) -> Answer:
    """Run one cohort question end to end and return the (disclosure-controlled) answer.

    ``options`` are the task's options; a numeric request in them (``omop.numeric_spec``) adds numeric
    statistics of the cohort's output columns to a released answer. ``received_at`` is when the worker
    received the task (default: now, before any work): the answer's ``produced_at`` is that moment, never
    the moment the query finished, so the answer cannot tell how long the query ran.
    """
    started = time.perf_counter()
    produced_at = received_at or datetime.now(UTC)
    threshold = policy.effective_threshold
    limits = policy.limits()

    def result(executed: str | None = None, failure: ExecutionFailed | None = None, **fields: Any) -> Answer:
        execution: dict[str, Any] = {"elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}
        if failure is not None:
            execution["failure"] = failure.audit_record()
        return Answer(
            TrustResult(
                query_id=query_id, trust_id=trust_id, threshold=threshold, produced_at=produced_at, **fields
            ),
            executed,
            execution,
        )

    if not policy.project_allowed(project_id):
        return result(
            status="rejected",
            reason_code="project_not_allowed",
            detail=f"project {project_id!r} is not approved at this trust",
        )
    try:
        request = NumericRequest.from_options(options or {})
    except UsageError as exc:
        return result(status="rejected", reason_code="bad_numeric_request", detail=str(exc))
    try:
        validated = validate(sql, policy.query_policy())
    except QueryRejected as exc:
        return result(status="rejected", reason_code=exc.code, detail=exc.message)
    statement = cohort_statistics_sql(validated.sql, validated.output_columns)
    try:
        person_count, row_count, columns, sex, age = executor.fetch_one(statement, limits)
        figures = release_figures(
            person_count=person_count,
            row_count=row_count,
            columns=columns or {},
            sex=sex or {},
            age=age or {},
            threshold=threshold,
        )
        if request is not None and figures["status"] == "released":
            figures["numeric"] = numeric_figures(
                validated, request, executor, limits, person_count, threshold
            )
    except NumericRejected as exc:
        return result(statement, status="rejected", reason_code=exc.code, detail=exc.message)
    except ExecutionFailed as exc:
        # one answer whatever happened; the cause is in ``execution`` for the audit log only
        return result(
            statement, exc, status="error", reason_code=EXECUTION_FAILED, detail=EXECUTION_FAILED_DETAIL
        )
    return result(statement, **figures)
