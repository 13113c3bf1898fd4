"""Root of the ``omopfed`` command line.

Errors users can act on (``OmopFedError``) become one line on stderr and the error's exit code, never a
traceback. ``--env-file FILE`` is accepted anywhere on the command line and applies to every command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.console import Console

from omop.errors import OmopFedError
from omop.settings import use_env_file

app = typer.Typer(
    name="omopfed",
    help="Federated cohort analytics over OMOP CDM databases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)

# typer >= 0.22 raises its own vendored click exceptions; older releases raise click's. Catch both.
_INTERRUPTS: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)
_USAGE_ERRORS: tuple[type[BaseException], ...] = (
    click.exceptions.ClickException,
    getattr(typer, "TyperException", click.exceptions.ClickException),
)


@app.callback()
def _root(
    env_file: Path | None = typer.Option(
        None, "--env-file", help="Read OMOPFED_* settings from this file (accepted after any command too)."
    ),
) -> None:
    """Federated cohort analytics over OMOP CDM databases."""


def _mount_trust() -> None:
    from trust_worker.cli import app as trust_app
    from trust_worker.cli_run import register as register_trust_run

    register_trust_run(trust_app)
    app.add_typer(trust_app, name="trust", help="What a hospital (trust) runs: database, checks, worker.")


def _mount_hub() -> None:
    try:
        from hub_broker.cli import app as hub_app
    except ImportError:  # pragma: no cover - a trust-only installation
        return
    app.add_typer(hub_app, name="hub", help="What the hub runs: submit, reducer, status, results.")


def _mount_keys() -> None:
    from omopfed.keys_cli import app as keys_app

    app.add_typer(keys_app, name="keys", help="Create and exchange signing and encryption keys.")


def _mount_stack() -> None:
    from omopfed.stack_cli import register as register_stack

    register_stack(app)


def _mount_compose() -> None:
    from omopfed.compose_cli import register as register_compose

    register_compose(app)


# First word of the command line → what it needs. Importing only that keeps the start-up of, say,
# ``omopfed hub submit`` free of the trust side, the stack and psycopg (measured: 1.4 s → see BENCHMARKS.md).
_GROUPS = {
    "trust": _mount_trust,
    "hub": _mount_hub,
    "keys": _mount_keys,
    "stack": _mount_stack,
    "demo": _mount_stack,
    "compose": _mount_compose,
}


def _mount(args: list[str]) -> None:
    """Register the command group the arguments name, or every group (for help and unknown words)."""
    first = next((a for a in args if not a.startswith("-")), None)
    mounters = [_GROUPS[first]] if first in _GROUPS else list(dict.fromkeys(_GROUPS.values()))
    for mount in mounters:
        mount()


def _take_env_files(argv: list[str]) -> list[str]:
    """Remove every ``--env-file X`` / ``--env-file=X`` from argv and register the files."""
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--env-file":
            value = next(it, None)
            if value is None:
                raise OmopFedError("--env-file needs a file name", exit_code=2)
            use_env_file(Path(value))
        elif arg.startswith("--env-file="):
            use_env_file(Path(arg.split("=", 1)[1]))
        else:
            rest.append(arg)
    return rest


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _take_env_files(args)
        _mount(args)
        result = app(args=args, prog_name="omopfed", standalone_mode=False)
    except OmopFedError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except _INTERRUPTS:
        err_console.print("interrupted")
        sys.exit(130)
    except _USAGE_ERRORS as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(int(getattr(exc, "exit_code", 1) or 1))
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
