"""``omopfed hub user ...`` and ``omopfed hub project ...``: the hub operator's account commands.

Run on the hub host against the hub store (``--store`` or ``OMOPFED_HUB_STORE_URL``), like ``hub reducer``:
whoever can run them can read the store anyway. ``hub user add`` prints the new token once, on stdout
(``--json``: exactly one object with ``token``); it is never written anywhere else.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from hub_broker.accounts import Accounts
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.settings import load

user_app = typer.Typer(no_args_is_help=True, help="Researchers and administrators of the hub service.")
project_app = typer.Typer(no_args_is_help=True, help="Projects and their members.")
out = Console()
err = Console(stderr=True)

STORE_HELP = "Hub store URL (OMOPFED_HUB_STORE_URL)."


def _accounts(store_url: str | None) -> Accounts:
    settings = load(HubSettings, hub_store_url=store_url)
    return Accounts(HubStore(settings.hub_store_url))


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="The user's name (letters, digits, '_', '.', '@', '-')."),
    admin: bool = typer.Option(False, "--admin", help="May see every query."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Add a user and print their personal API token, once: it is stored only as a hash."""
    token = _accounts(store_url).add_user(name, admin=admin)
    if as_json:
        print(json.dumps({"name": name, "is_admin": admin, "token": token}, sort_keys=True))
        return
    err.print(f"added user {name}{' (admin)' if admin else ''}; their token, shown only now:")
    print(token)


@user_app.command("list")
def user_list(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List the users: name, admin, disabled, created, projects (never a token)."""
    users = _accounts(store_url).users()
    if as_json:
        print(json.dumps([u.to_json() for u in users], sort_keys=True))
        return
    table = Table("name", "admin", "disabled", "created", "projects")
    for u in users:
        table.add_row(
            u.name,
            "yes" if u.is_admin else "",
            "yes" if u.disabled else "",
            u.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            ", ".join(u.projects),
        )
    out.print(table)


@user_app.command("disable")
def user_disable(
    name: str = typer.Argument(..., help="The user to disable."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Disable a user: their token is refused from now on; their queries stay."""
    _accounts(store_url).disable_user(name)
    err.print(f"disabled user {name}")


@project_app.command("add")
def project_add(
    project: str = typer.Argument(..., help="The project id the trusts' policies name."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Add a project (the same id the trusts list in ``allowed_projects``)."""
    _accounts(store_url).add_project(project)
    err.print(f"added project {project}")


@project_app.command("list")
def project_list(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List the projects and their members."""
    projects = _accounts(store_url).projects()
    if as_json:
        print(
            json.dumps(
                [
                    {"project": p, "created_at": created.isoformat(), "members": list(members)}
                    for p, created, members in projects
                ],
                sort_keys=True,
            )
        )
        return
    table = Table("project", "created", "members")
    for p, created, members in projects:
        table.add_row(p, created.strftime("%Y-%m-%d %H:%M:%S"), ", ".join(members))
    out.print(table)


@project_app.command("add-member")
def project_add_member(
    project: str = typer.Argument(..., help="The project."),
    name: str = typer.Argument(..., help="The user to add to it."),
    store_url: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Let a user submit queries for a project."""
    _accounts(store_url).add_member(project, name)
    err.print(f"added {name} to project {project}")
