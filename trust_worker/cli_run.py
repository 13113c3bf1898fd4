"""``omopfed trust worker | check | audit``: the commands that run or review the query pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from omop.errors import ExitCode, OmopFedError, UsageError
from omop.settings import load
from omop.states import AuditDecision, PrivacyMode, ResultStatus
from omop.user_input import read_text
from trust_worker.audit_log import AuditLog
from trust_worker.settings import TrustSettings

out = Console()
err = Console(stderr=True)

#: ``trust check`` asks one trust, so it exits as ``hub submit`` would with only this trust: 0 when the trust
#: answers (figures released, or suppressed under the threshold), 4 when it does not (the query refused, or
#: it could not run: the database unreachable or its role not read-only, a timeout, a lost privilege).
CHECK_EXIT = {
    ResultStatus.RELEASED: ExitCode.OK,
    ResultStatus.SUPPRESSED: ExitCode.OK,
    ResultStatus.REJECTED: ExitCode.FAILED,
    ResultStatus.ERROR: ExitCode.FAILED,
}


def worker_cmd(
    trust_id: str | None = typer.Option(None, "--trust-id", help="This trust's id (OMOPFED_TRUST_ID)."),
    loglevel: str = typer.Option("INFO", "--loglevel"),
) -> None:
    """Run this trust's Celery worker: consumes only trust.<id>, connects outbound only."""
    from trust_worker.celery_app import run_worker

    run_worker(load(TrustSettings, trust_id=trust_id), loglevel=loglevel.upper())


def check_cmd(
    db_url: str | None = typer.Option(
        None, "--db-url", help="The reader role's URL (OMOPFED_READER_DB_URL)."
    ),
    sql_file: Path = typer.Option(..., "--sql-file", help="File with the cohort SQL."),
    policy_file: Path | None = typer.Option(
        None, "--policy", help="Trust policy TOML (OMOPFED_POLICY_FILE)."
    ),
    project: str | None = typer.Option(None, "--project", help="Project id to check against the policy."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> int:
    """Run the whole pipeline locally and show what would be released, or why not.

    Exit codes: 0 the trust would answer (released or suppressed), 4 it would not (rejected or error).
    """
    from trust_worker.celery_app import check_reader_role
    from trust_worker.executor import ReaderExecutor
    from trust_worker.pipeline import answer_cohort
    from trust_worker.policy_file import load_policy

    settings = load(TrustSettings, reader_db_url=db_url, policy_file=policy_file)
    if not settings.reader_db_url:
        raise UsageError("no database URL: pass --db-url (the data_analyst_reader connection)")
    sql = read_text(sql_file, "--sql-file")
    policy = load_policy(settings.policy_file)
    executor = ReaderExecutor(settings.reader_db_url)
    view: dict[str, Any]
    try:
        check_reader_role(executor)
        answer = answer_cohort(
            sql,
            query_id="local-check",
            trust_id=settings.trust_id or "local",
            project_id=project,
            policy=policy,
            executor=executor,
        )
    except OmopFedError as exc:  # unreachable database or a role that is not read-only
        view = {
            "status": ResultStatus.ERROR,
            "detail": str(exc),
            "reason_code": "unsafe_or_unavailable_database",
            "threshold": policy.effective_threshold,
        }
    else:
        result = answer.result.model_dump(mode="json", exclude_none=False)
        view = {k: result[k] for k in ("status", "detail", "reason_code", "threshold", "privacy")}
        if answer.result.status is ResultStatus.RELEASED:
            view.update({k: result[k] for k in ("person_count", "row_count", "sex", "age", "columns")})
        failure = answer.execution.get("failure")
        if failure is not None:
            # for the trust's staff running the check; the hub would get only ``detail``
            view["cause_not_sent"] = failure["description"]
    finally:
        executor.close()
    if as_json:
        print(json.dumps(view, sort_keys=True))
    else:
        _render_check(view)
    return CHECK_EXIT[view["status"]]


def _render_check(view: dict[str, Any]) -> None:
    out.print(f"status: [bold]{view['status']}[/]" + (f" — {view['detail']}" if view.get("detail") else ""))
    if view.get("cause_not_sent"):
        out.print(
            f"cause (kept in the audit log, never sent to the hub): {view['cause_not_sent']}",
            markup=False,
            highlight=False,
        )
    privacy = view.get("privacy") or {}
    if privacy.get("mode") == PrivacyMode.DP:
        out.print(
            f"privacy: dp, epsilon {privacy.get('epsilon')} per query: these figures carry noise, as the hub "
            "would get them (a check spends no budget)",
            markup=False,
            highlight=False,
        )
    elif privacy.get("mode") == PrivacyMode.EXACT:
        out.print("privacy: exact (threshold and merging rules only)", markup=False, highlight=False)
    if view["status"] != ResultStatus.RELEASED:
        return
    out.print(f"persons: {view['person_count']}   rows: {view['row_count']}   threshold: {view['threshold']}")
    for name in ("sex", "age"):
        table = Table(name, "persons")
        for label, n in view[name].items():
            table.add_row(label, str(n))
        out.print(table)


def audit_cmd(
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="The worker's state dir (OMOPFED_STATE_DIR)."
    ),
    limit: int = typer.Option(50, "--limit", help="Show the last N entries."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    verify: bool = typer.Option(False, "--verify", help="Check the hash chain; exit 1 if it is broken."),
) -> int:
    """List the trust's audit log: every task, its SQL, the decision and what was released.

    Exit codes: 0 listed (with --verify: the chain is intact), 1 the chain is broken.
    """
    settings = load(TrustSettings, state_dir=state_dir)
    log = AuditLog(settings.audit_path())
    if verify:
        breaks = log.verify()
        for b in breaks:
            err.print(f"line {b.line}: {b.reason}")
        err.print("audit log intact" if not breaks else f"audit log damaged: {len(breaks)} problem(s)")
        return ExitCode.ERROR if breaks else ExitCode.OK
    entries = list(log.entries())[-limit:] if limit > 0 else []
    if as_json:
        for entry in entries:
            print(json.dumps(entry, sort_keys=True))
        return 0
    table = Table("time", "query", "project", "decision", "detail / released")
    for e in entries:
        released = e.get("released") or {}
        failure = (e.get("execution") or {}).get("failure") or {}
        summary = (
            f"{released.get('person_count')} persons"
            if e["decision"] == AuditDecision.RELEASED
            else (failure.get("description") or e.get("detail") or "")
        )
        table.add_row(e["time"][:19], e["query_id"][:12], e.get("project_id") or "", e["decision"], summary)
    out.print(table if entries else f"no audit entries in {settings.audit_path()}")
    return 0


budget_app = typer.Typer(
    help="The privacy budget (dp mode): spending by project, and grants by the governance team.",
    invoke_without_command=True,
    no_args_is_help=False,
)

_STATE_DIR_OPTION = typer.Option(None, "--state-dir", help="The worker's state dir (OMOPFED_STATE_DIR).")
_POLICY_OPTION = typer.Option(None, "--policy", help="Trust policy TOML (OMOPFED_POLICY_FILE).")


@budget_app.callback()
def budget_cmd(
    ctx: typer.Context,
    state_dir: Path | None = _STATE_DIR_OPTION,
    policy_file: Path | None = _POLICY_OPTION,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per project, one per line."),
) -> None:
    """Show each project's privacy spending at this trust: queries, epsilon spent, granted and left."""
    if ctx.invoked_subcommand is not None:
        return
    from trust_worker.policy_file import load_policy
    from trust_worker.task_ledger import TaskLedger

    settings = load(TrustSettings, state_dir=state_dir, policy_file=policy_file)
    privacy = load_policy(settings.policy_file).privacy
    if not settings.ledger_path().exists():
        raise UsageError(f"no ledger in {settings.state_dir}: give the worker's --state-dir")
    ledger = TaskLedger(settings.ledger_path())
    try:
        budgets = ledger.budgets(float(privacy.budget_per_project))
    finally:
        ledger.close()
    if as_json:
        for b in budgets:
            doc = {"project_id": b.project_id, "queries": b.queries, "spent": b.spent}
            doc.update({"granted": b.granted, "budget": b.budget + b.granted, "left": b.left})
            print(json.dumps(doc, sort_keys=True))
        return
    mode = f"mode {privacy.mode.value}"
    if privacy.dp:
        mode += f", epsilon {privacy.epsilon_per_query:g} per query"
        mode += f", budget {privacy.budget_per_project:g} per project"
    out.print(mode, markup=False, highlight=False)
    table = Table("project", "queries", "spent", "granted", "left")
    for b in budgets:
        table.add_row(b.project_id, str(b.queries), f"{b.spent:.4g}", f"{b.granted:.4g}", f"{b.left:.4g}")
    out.print(table if budgets else "no project has spent any privacy budget here yet")


@budget_app.command("grant")
def grant_cmd(
    project: str = typer.Option(..., "--project", help="The project to give more budget."),
    epsilon: float = typer.Option(..., "--epsilon", help="How much privacy loss to add (> 0)."),
    reason: str = typer.Option(..., "--reason", help="Why: the governance decision, kept in the audit log."),
    state_dir: Path | None = _STATE_DIR_OPTION,
    policy_file: Path | None = _POLICY_OPTION,
) -> None:
    """Give a project more privacy budget at this trust (audited)."""
    import math
    import re

    from omop.protocol import PROJECT_ID_PATTERN
    from trust_worker.policy_file import MAX_BUDGET_PER_PROJECT, load_policy
    from trust_worker.task_ledger import TaskLedger

    if not re.fullmatch(PROJECT_ID_PATTERN, project):
        raise UsageError(f"--project {project!r} is not a project id")
    if not (math.isfinite(epsilon) and 0 < epsilon <= MAX_BUDGET_PER_PROJECT):
        raise UsageError(f"--epsilon must be above 0 and at most {MAX_BUDGET_PER_PROJECT:g}")
    if not reason.strip():
        raise UsageError("--reason must say why (it goes into the audit log)")
    settings = load(TrustSettings, state_dir=state_dir, policy_file=policy_file)
    privacy = load_policy(settings.policy_file).privacy
    if not settings.ledger_path().exists():
        raise UsageError(f"no ledger in {settings.state_dir}: give the worker's --state-dir")
    ledger = TaskLedger(settings.ledger_path())
    try:
        ledger.grant(project, epsilon, reason.strip())
        (entry,) = [b for b in ledger.budgets(float(privacy.budget_per_project)) if b.project_id == project]
    finally:
        ledger.close()
    AuditLog(settings.audit_path()).append(
        query_id="-",
        project_id=project,
        sql=None,
        decision=AuditDecision.BUDGET_GRANTED,
        detail=f"granted epsilon {epsilon:g}: {reason.strip()}",
        extra={"epsilon": epsilon, "left": entry.left},
    )
    out.print(f"project {project}: granted {epsilon:g}, {entry.left:.4g} left", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_cmd)
    app.command("check")(check_cmd)
    app.command("audit")(audit_cmd)
    app.add_typer(budget_app, name="budget")
