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
from omop.differential_privacy import MECHANISM, NoisePlan, cohort_groups, numeric_groups, plan_noise
from omop.disclosure import SUPPRESSED_DETAIL, decide, is_small, protect_distribution, protect_pair
from omop.errors import Inadmissible as Inadmissible
from omop.numeric_disclosure import protect_numeric
from omop.numeric_spec import NumericRequest
from omop.protocol import (
    EXECUTION_FAILED,
    EXECUTION_FAILED_DETAIL,
    ColumnCounts,
    PrivacyStatement,
    TrustResult,
)
from omop.sql_policy import QueryRejected, ValidatedQuery, validate
from omop.states import ReasonCode, ResultStatus
from trust_worker.aggregate_sql import cohort_statistics_sql
from trust_worker.executor import ExecutionFailed, Limits, ReaderExecutor
from trust_worker.noisy_release import noisy_cohort_figures, noisy_numeric
from trust_worker.numeric_sql import (
    NumericRejected,
    clamped_statistics_sql,
    column_types_sql,
    numeric_statistics_sql,
    resolve_columns,
)
from trust_worker.policy_file import PrivacyPolicy, TrustPolicy


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

    Below the threshold (zero included) nothing but the status is released, with the same wording: whether
    the cohort is released at all is ``omop.disclosure.decide``, the one place that rule is written.

    Row-based figures (``row_count`` and the per-column null/non-null pairs, which add up to it) are
    released only when ``row_count - person_count`` is 0 or at least T: otherwise "3 rows more than
    persons" would tell that a handful of persons have extra records. Withheld, they are all withheld
    together, since any one pair would give ``row_count`` back.
    """
    if not decide(person_count, threshold):
        return {"status": ResultStatus.SUPPRESSED, "detail": SUPPRESSED_DETAIL}
    released_rows: int | None = None
    released_columns: dict[str, ColumnCounts] | None = None
    if not is_small(row_count - person_count, threshold):
        released_rows = row_count
        released_columns = {}
        for name, (non_null, null) in columns.items():
            nn, nl = protect_pair(int(non_null), int(null), threshold)
            released_columns[name] = ColumnCounts(non_null=nn, null=nl)
    return {
        "status": ResultStatus.RELEASED,
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


def admit(
    sql: str, project_id: str | None, numeric: NumericRequest | None, policy: TrustPolicy
) -> tuple[NumericRequest | None, ValidatedQuery]:
    """The checks that need no data: project, SQL policy, the numeric request against this trust's
    limits (its grids, and in dp mode its bounds). Raises ``Inadmissible``.

    The request itself was validated with the task it came in (``CohortTask.numeric``).

    The task handler asks this before charging a privacy budget, so a query refused here costs nothing;
    ``answer_cohort`` asks it again (it is pure and fast) so every path answers the same way.
    """
    if not policy.project_allowed(project_id):
        raise Inadmissible(
            ReasonCode.PROJECT_NOT_ALLOWED, f"project {project_id!r} is not approved at this trust"
        )
    request = numeric
    try:
        validated = validate(sql, policy.query_policy())
    except QueryRejected as exc:
        raise Inadmissible(exc.code, exc.message) from None
    if request is not None:
        try:
            check_grids(request, policy.privacy)
            if policy.privacy.dp:  # the columns named in the request; others are known only from their types
                named = [*(request.columns or ()), *request.histograms]
                resolve_bounds(list(dict.fromkeys(named)), request, policy.privacy)
        except NumericRejected as exc:
            raise Inadmissible(exc.code, exc.message) from None
    return request, validated


def check_grids(request: NumericRequest, privacy: PrivacyPolicy) -> None:
    """Refuse a histogram grid finer than the trust allows (both modes)."""
    for name, spec in request.histograms.items():
        if spec.bins > privacy.max_histogram_bins:
            raise NumericRejected(
                ReasonCode.HISTOGRAM_TOO_FINE,
                f"the histogram of {name!r} has {spec.bins} bins; this trust allows at most "
                f"{privacy.max_histogram_bins}",
            )


def resolve_bounds(
    columns: list[str], request: NumericRequest, privacy: PrivacyPolicy
) -> dict[str, tuple[float, float]]:
    """The clamping bounds of each column in dp mode: the researcher's, else the trust's own for it.

    A column without either is refused (``bounds_required``): noise can only be calibrated to a known
    range. Bounds outside what the trust allows for that feature are refused (``bounds_not_allowed``).
    """
    resolved: dict[str, tuple[float, float]] = {}
    for name in columns:
        allowed = privacy.bounds.get(name)
        wanted = request.bounds.get(name, allowed)
        if wanted is None:
            raise NumericRejected(
                ReasonCode.BOUNDS_REQUIRED,
                f"in dp mode every numeric column needs bounds; declare them, for example "
                f"--numeric {name}:LOWER:UPPER",
            )
        if allowed is not None and not (allowed[0] <= wanted[0] and wanted[1] <= allowed[1]):
            raise NumericRejected(
                ReasonCode.BOUNDS_NOT_ALLOWED,
                f"bounds {wanted[0]:g}..{wanted[1]:g} for {name!r} are outside what this trust allows "
                f"({allowed[0]:g}..{allowed[1]:g})",
            )
        resolved[name] = (float(wanted[0]), float(wanted[1]))
    return resolved


def _dp_figures(
    validated: ValidatedQuery,
    request: NumericRequest | None,
    policy: TrustPolicy,
    executor: ReaderExecutor,
    limits: Limits,
) -> tuple[str, dict[str, Any], NoisePlan, dict[str, tuple[float, float]]]:
    """Run the dp statements and noise their figures; returns (statement, figures, plan, bounds).

    The plan (which figures, their sensitivities, the split of epsilon) is fixed before any cohort row is
    read: the numeric columns come from the output columns' *types* (the cohort is planned, never run).
    """
    privacy = policy.privacy
    threshold = policy.effective_threshold
    columns: list[str] = []
    bounds: dict[str, tuple[float, float]] = {}
    if request is not None:
        check_grids(request, privacy)
        (types,) = executor.fetch_one(column_types_sql(validated.sql, validated.output_columns), limits)
        columns = resolve_columns(request, validated.output_columns, types)
        bounds = resolve_bounds(columns, request, privacy)
    groups = cohort_groups(len(validated.output_columns), privacy.max_rows_per_person)
    for name in columns:
        groups += numeric_groups(name, *bounds[name], histogram=name in request.histograms)  # type: ignore[union-attr]
    plan = plan_noise(float(privacy.epsilon_per_query), groups)
    statement = cohort_statistics_sql(validated.sql, validated.output_columns, privacy.max_rows_per_person)
    person_count, row_count, column_counts, sex, age = executor.fetch_one(statement, limits)
    figures = noisy_cohort_figures(
        plan,
        person_count=person_count,
        row_count=row_count,
        columns=column_counts or {},
        sex=sex or {},
        age=age or {},
        threshold=threshold,
    )
    if request is not None and figures["status"] == ResultStatus.RELEASED:
        histograms = {name: spec for name, spec in request.histograms.items() if name in columns}
        (raw,) = executor.fetch_one(
            clamped_statistics_sql(validated.sql, columns, bounds, histograms), limits
        )
        if raw.get("cohort_persons") != person_count:
            raise ExecutionFailed(
                "data_changed", "the cohort's person count changed between the two statements (data changed)"
            )
        figures["numeric"] = noisy_numeric(plan, raw, bounds, histograms, threshold)
    return statement, figures, plan, bounds


def answer_cohort(
    sql: str,
    *,
    query_id: str,
    trust_id: str,
    project_id: str | None,
    policy: TrustPolicy,
    executor: ReaderExecutor,
    numeric: NumericRequest | None = None,
    received_at: datetime | None = None,
    budget_left: float | None = None,
) -> Answer:
    """Run one cohort question end to end and return the (disclosure-controlled) answer.

    ``numeric`` is the task's numeric request (``omop.numeric_spec``), if any: it adds numeric statistics
    of the cohort's output columns to a released answer. ``received_at`` is when the worker
    received the task (default: now, before any work): the answer's ``produced_at`` is that moment, never
    the moment the query finished, so the answer cannot tell how long the query ran.

    In dp mode (the policy's ``[privacy]``) every figure is noised (``_dp_figures``) and the answer states
    the noise; ``budget_left`` is what the project has left at this trust after this query was charged
    (the caller charges it, see ``trust_worker.task_ledger``).
    """
    started = time.perf_counter()
    produced_at = received_at or datetime.now(UTC)
    threshold = policy.effective_threshold
    limits = policy.limits()

    privacy = policy.privacy
    statement_of_privacy = PrivacyStatement(mode=privacy.mode)

    def result(executed: str | None = None, failure: ExecutionFailed | None = None, **fields: Any) -> Answer:
        execution: dict[str, Any] = {"elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}
        if failure is not None:
            execution["failure"] = failure.audit_record()
        return Answer(
            TrustResult(
                query_id=query_id,
                trust_id=trust_id,
                threshold=threshold,
                produced_at=produced_at,
                privacy=statement_of_privacy,
                **fields,
            ),
            executed,
            execution,
        )

    try:
        request, validated = admit(sql, project_id, numeric, policy)
    except Inadmissible as exc:
        return result(status=ResultStatus.REJECTED, reason_code=exc.code, detail=exc.message)
    if privacy.dp:
        statement_of_privacy = PrivacyStatement(
            mode=privacy.mode, epsilon=float(privacy.epsilon_per_query), budget_left=budget_left
        )
        try:
            statement, figures, plan, bounds = _dp_figures(validated, request, policy, executor, limits)
        except NumericRejected as exc:
            return result(None, status=ResultStatus.REJECTED, reason_code=exc.code, detail=exc.message)
        except ExecutionFailed as exc:
            return result(
                None,
                exc,
                status=ResultStatus.ERROR,
                reason_code=EXECUTION_FAILED,
                detail=EXECUTION_FAILED_DETAIL,
            )
        statement_of_privacy = PrivacyStatement(
            mode=privacy.mode,
            mechanism=MECHANISM,
            epsilon=plan.epsilon,
            budget_left=budget_left,
            scales=plan.scales,
            bounds=bounds,
        )
        return result(statement, **figures)
    statement = cohort_statistics_sql(validated.sql, validated.output_columns)
    try:
        if request is not None:
            check_grids(request, privacy)
        person_count, row_count, columns, sex, age = executor.fetch_one(statement, limits)
        figures = release_figures(
            person_count=person_count,
            row_count=row_count,
            columns=columns or {},
            sex=sex or {},
            age=age or {},
            threshold=threshold,
        )
        if request is not None and figures["status"] == ResultStatus.RELEASED:
            figures["numeric"] = numeric_figures(
                validated, request, executor, limits, person_count, threshold
            )
    except NumericRejected as exc:
        return result(statement, status=ResultStatus.REJECTED, reason_code=exc.code, detail=exc.message)
    except ExecutionFailed as exc:
        # one answer whatever happened; the cause is in ``execution`` for the audit log only
        return result(
            statement,
            exc,
            status=ResultStatus.ERROR,
            reason_code=EXECUTION_FAILED,
            detail=EXECUTION_FAILED_DETAIL,
        )
    return result(statement, **figures)
