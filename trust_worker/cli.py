"""``omopfed trust ...`` commands: thin wrappers over the trust-side functions.

Database commands take the owner/superuser URL from ``--db-url`` or ``OMOPFED_DB_URL`` (env files work too)
and the reader password from ``--reader-password`` or ``OMOPFED_READER_PASSWORD``. Every failure a user can
fix is an ``OmopFedError``: the root CLI prints it as one line and exits non-zero.
"""

from __future__ import annotations

import typer
from pydantic import Field
from rich.console import Console

from omop.dburl import database_name, libpq_url, redact
from omop.errors import UsageError
from omop.settings import OmopFedSettings, load

app = typer.Typer(no_args_is_help=True)
out = Console()


class DatabaseSettings(OmopFedSettings):
    """Where the trust's OMOP database is, for the commands that create and fill it."""

    db_url: str | None = Field(default=None, description="Owner/superuser URL of the OMOP database.")
    reader_password: str | None = Field(default=None, description="Password for data_analyst_reader.")


def _db_url(given: str | None) -> str:
    url = given or load(DatabaseSettings).db_url
    if not url:
        raise UsageError("no database URL given (use --db-url or the OMOPFED_DB_URL variable)")
    return libpq_url(url)


_DB_URL_HELP = "Owner/superuser URL (postgresql:// or postgresql+psycopg://); default OMOPFED_DB_URL."


@app.command("init-db")
def init_db_cmd(
    db_url: str | None = typer.Option(None, "--db-url", help=_DB_URL_HELP),
    reader_password: str | None = typer.Option(
        None, "--reader-password", help="Password for data_analyst_reader; default OMOPFED_READER_PASSWORD."
    ),
    statement_timeout_ms: int = typer.Option(
        30000, "--statement-timeout-ms", help="Reader statement timeout."
    ),
    connection_limit: int = typer.Option(20, "--connection-limit", help="Reader connection limit."),
    temp_file_limit_mb: int = typer.Option(
        1024,
        "--temp-file-limit-mb",
        help="Temporary file space one reader query may use (the worker lowers it to the policy's value).",
    ),
    dev_password: bool = typer.Option(
        False, "--dev-password", help="Development only: allow the built-in reader password if none is given."
    ),
) -> None:
    """Create schema omop, its tables and the read-only reader role (idempotent, one transaction)."""
    from trust_worker.database_setup import READER_ROLE, init_db

    url = _db_url(db_url)
    password = reader_password if reader_password is not None else load(DatabaseSettings).reader_password
    notes = init_db(
        url,
        password,
        statement_timeout_ms=statement_timeout_ms,
        connection_limit=connection_limit,
        allow_dev_password=dev_password,
        temp_file_limit_mb=temp_file_limit_mb,
    )
    out.print(
        f"schema omop and role {READER_ROLE} ready in database {database_name(url)} ({redact(url)})",
        soft_wrap=True,
        highlight=False,
    )
    err = Console(stderr=True)
    for note in notes:
        err.print(f"warning: {note}", soft_wrap=True, highlight=False)


@app.command("seed")
def seed_cmd(
    db_url: str | None = typer.Option(None, "--db-url", help=_DB_URL_HELP),
    persons: int = typer.Option(5000, "--persons", help="How many synthetic persons (bulk mode)."),
    seed: int = typer.Option(1, "--seed", help="Random seed; give each trust a different one."),
    fixture: bool = typer.Option(False, "--fixture", help="Load the small FLIP-like fixture instead."),
    replace: bool = typer.Option(False, "--replace", help="Delete existing omop data first."),
) -> None:
    """Load synthetic OMOP data (one transaction; refuses a non-empty schema unless --replace)."""
    from trust_worker.synthetic_data import check_persons
    from trust_worker.synthetic_data import seed as run_seed

    if not fixture:
        check_persons(persons)
    url = _db_url(db_url)
    err = Console(stderr=True)
    with err.status(f"seeding {database_name(url)}…") as status:

        def progress(table: str, rows: int) -> None:
            status.update(f"seeding {database_name(url)}: {table} done ({rows:,} rows)…")

        report = run_seed(
            url, persons=persons, seed=seed, fixture=fixture, replace=replace, progress=progress
        )
    rows = sum(report.rows.values())
    out.print(
        f"loaded {report.mode} data: {report.persons:,} persons, {rows:,} rows in {report.seconds:.1f} s "
        f"into {database_name(url)}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("load-eunomia")
def load_eunomia_cmd(
    db_url: str | None = typer.Option(None, "--db-url", help=_DB_URL_HELP),
    shard: str | None = typer.Option(None, "--shard", help="K/N: only persons with person_id % N == K."),
    replace: bool = typer.Option(False, "--replace", help="Delete existing omop data first."),
) -> None:
    """Load OHDSI's Eunomia GiBleed dataset (or one shard of it) into schema omop."""
    from trust_worker.eunomia_loader import load_eunomia, parse_shard

    parsed = parse_shard(shard)
    url = _db_url(db_url)
    report = load_eunomia(url, shard=parsed, replace=replace)
    what = "Eunomia" if parsed.count == 1 else f"Eunomia shard {parsed}"
    out.print(
        f"loaded {what}: {report.rows.get('person', 0):,} persons, {sum(report.rows.values()):,} rows "
        f"in {report.seconds:.1f} s into {database_name(url)}",
        soft_wrap=True,
        highlight=False,
    )
