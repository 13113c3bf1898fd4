"""``omopfed hub ...``: submit, reducer, status, result, redis-acl, serve, user, project. Thin wrappers over
the hub modules."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hub_broker.accounts_cli import project_app, user_app
from hub_broker.display import progress_table, render_report
from hub_broker.finalize import finalize_if_due
from hub_broker.report import EXIT_CODES, query_report
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore, Query
from hub_broker.submit import submit, wait_for
from omop.errors import UsageError
from omop.numeric_spec import NumericRequest
from omop.settings import load
from omop.states import QueryStatus
from omop.user_input import read_text

app = typer.Typer(no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(project_app, name="project")
out = Console()
err = Console(stderr=True)

TRUSTS_HELP = "Comma-separated trust ids (default: every registered trust)."


def _settings(**overrides: object) -> HubSettings:
    return load(HubSettings, **overrides)


def _read_sql(sql_file: Path | None, sql: str | None) -> str:
    if (sql_file is None) == (sql is None):
        raise UsageError("give exactly one of --sql-file or --sql")
    if sql_file is not None:
        return read_text(sql_file, "--sql-file")
    assert sql is not None
    return sql


@app.command("submit")
def submit_cmd(
    sql_file: Path | None = typer.Option(None, "--sql-file", help="File with the cohort SQL."),
    sql: str | None = typer.Option(None, "--sql", help="The cohort SQL as text."),
    trusts: str | None = typer.Option(None, "--trusts", help=TRUSTS_HELP),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds to wait for trusts (default 60)."),
    project: str = typer.Option("default", "--project", help="Project id the trusts check against policy."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    store_url: str | None = typer.Option(None, "--store", help="Hub store URL (OMOPFED_HUB_STORE_URL)."),
    numeric: str | None = typer.Option(
        None, "--numeric", help="Numeric columns to summarise, comma-separated (n, mean, sd)."
    ),
    histogram: list[str] = typer.Option(
        [], "--histogram", help="COLUMN=LOWER:UPPER:BINS shared bins (repeatable); adds quantiles."
    ),
    all_numeric: bool = typer.Option(
        False, "--all-numeric", help="Summarise every numeric output column except ids."
    ),
) -> int:
    """Submit a cohort question to the trusts, show progress per trust, then the pooled result.

    Exit codes: 0 every trust answered, 3 some trusts did not answer, 4 no trust answered.
    """
    settings = _settings(hub_store_url=store_url)
    text = _read_sql(sql_file, sql)
    request = None
    if numeric is not None or histogram or all_numeric:
        if numeric is not None and all_numeric:
            raise UsageError("give --numeric COLUMNS or --all-numeric, not both")
        request = NumericRequest.from_cli(numeric, histogram)
    store = HubStore(settings.hub_store_url)
    wanted = trusts.split(",") if trusts is not None else None
    sub = submit(
        settings, store, sql=text, trusts=wanted, timeout_s=timeout, project_id=project, numeric=request
    )
    if as_json:
        query = wait_for(store, sub.query_id)
        print(json.dumps(query_report(query), sort_keys=True))
    else:
        err.print(
            f"query [bold]{sub.query_id}[/] sent to {len(sub.trusts)} trust(s): {', '.join(sub.trusts)}"
        )
        with Live(console=err, refresh_per_second=10, transient=True) as live:

            def show(q: Query) -> None:
                live.update(progress_table(q))

            query = wait_for(store, sub.query_id, on_progress=show)
        render_report(out, query_report(query))
    return EXIT_CODES.get(query.status, 4)


@app.command("status")
def status_cmd(
    query_id: str | None = typer.Argument(None, help="A query id (default: the most recent queries)."),
    store_url: str | None = typer.Option(None, "--store"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the state of one query, or a list of recent ones."""
    store = HubStore(_settings(hub_store_url=store_url).hub_store_url)
    if query_id is None:
        queries = store.recent()
        for q in queries:
            finalize_if_due(store, q.query_id)
        queries = store.recent()
        if as_json:
            print(
                json.dumps(
                    [
                        {"query_id": q.query_id, "status": q.status, "created_at": q.created_at.isoformat()}
                        for q in queries
                    ]
                )
            )
            return
        table = Table("query id", "status", "created", "trusts")
        for q in queries:
            table.add_row(
                q.query_id,
                q.status,
                q.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                ", ".join(f"{a.trust_id}:{a.status}" for a in q.answers),
            )
        out.print(table)
        return
    query = _known(store, query_id)
    if as_json:
        print(
            json.dumps(
                {
                    "query_id": query.query_id,
                    "status": query.status,
                    "trusts": {a.trust_id: a.status for a in query.answers},
                }
            )
        )
    else:
        out.print(progress_table(query))


@app.command("result")
def result_cmd(
    query_id: str = typer.Argument(..., help="The query id printed by submit."),
    store_url: str | None = typer.Option(None, "--store"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> int:
    """Print the pooled and per-trust result of a query from the store.

    Exit codes: 0 every trust answered (or the query is still pending), 3 some trusts did not answer,
    4 no trust answered.
    """
    store = HubStore(_settings(hub_store_url=store_url).hub_store_url)
    query = _known(store, query_id)
    report = query_report(query)
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        render_report(out, report)
    return EXIT_CODES.get(query.status, 0 if query.status == QueryStatus.PENDING else 4)


def _known(store: HubStore, query_id: str) -> Query:
    query = finalize_if_due(store, query_id)
    if query is None:
        raise UsageError(f"unknown query id {query_id!r}")
    return query


@app.command("queues")
def queues_cmd(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Per trust: tasks waiting and in flight, answers waiting for the reducer, refused messages."""
    from hub_broker.queues import queue_depths
    from hub_broker.store import HubStore
    from omop.keys import load_trust_registry

    settings = _settings()
    refusals = HubStore(settings.hub_store_url).refusals_by_trust()
    depths = queue_depths(settings.broker_url, sorted(load_trust_registry(settings.hub_keys_dir)), refusals)
    if as_json:
        print(json.dumps(depths, sort_keys=True))
        return
    table = Table("queue", "waiting", "in flight", "answers waiting", "refused", "last refusal")
    for queue, d in depths.items():
        table.add_row(
            queue,
            str(d["waiting"]),
            str(d["in_flight"]),
            str(d["answers_waiting"]),
            str(d["refused"]),
            d["last_refusal"] or "",
        )
    out.print(table)


@app.command("reducer")
def reducer_cmd(
    loglevel: str = typer.Option("INFO", "--loglevel"),
    store_url: str | None = typer.Option(None, "--store"),
) -> None:
    """Run the hub's reducer: reads every trust's results key, verifies, stores and pools answers."""
    from hub_broker.reducer import run_reducer

    run_reducer(_settings(hub_store_url=store_url), loglevel=loglevel.upper())


@app.command("redis-acl")
def redis_acl_cmd(
    trusts: str = typer.Option(..., "--trusts", help="Comma-separated trust ids."),
    out_dir: Path = typer.Option(..., "--out", help="Directory for users.acl and password files."),
) -> None:
    """Write a Redis ACL file: one user per trust (own queue only), a hub user, default user off."""
    from hub_broker.redis_acl import write_acl

    ids = [t.strip() for t in trusts.split(",") if t.strip()]
    if not ids:
        raise UsageError("the trust list is empty")
    path = write_acl(out_dir, ids)
    err.print(
        f"wrote {path} ({len(ids)} trust user(s) + hub); passwords in {out_dir}/*.redis-password (0600)"
    )


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (put TLS in front of it)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    store_url: str | None = typer.Option(None, "--store", help="Hub store URL (OMOPFED_HUB_STORE_URL)."),
    loglevel: str = typer.Option("info", "--loglevel", help="uvicorn's log level."),
) -> None:
    """Run the hub service: researchers submit and read queries over HTTP with a personal token.

    The reducer (``omopfed hub reducer``) runs beside it, as its own process, on the same store.
    """
    from hub_broker.api import serve

    serve(_settings(hub_store_url=store_url), host=host, port=port, log_level=loglevel.lower())
