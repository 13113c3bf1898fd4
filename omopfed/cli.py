"""Root of the ``omopfed`` command line.

Every failure a user can act on is one line on stderr, ``error: ...``, never a traceback, and an exit code
with the same meaning for every command (``omop.errors.ExitCode``, README.md "Exit codes"): an
``OmopFedError`` exits with its class's code, a command line that does not parse with 2, Ctrl-C with 130.
``--env-file FILE`` is accepted anywhere on the command line and applies to every command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.text import Text

from omop.errors import ExitCode, OmopFedError, UsageError
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
_CLICK_ERRORS: tuple[type[BaseException], ...] = (
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
    app.add_typer(
        hub_app, name="hub", help="What the hub runs: submit, reducer, status, results, service, accounts."
    )


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
                raise UsageError("--env-file needs a file name")
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
        _error(str(exc))
        sys.exit(exc.exit_code)
    except _INTERRUPTS:
        err_console.print("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
    except _CLICK_ERRORS as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called bare: its help, as click shows it
            exc.show()  # type: ignore[attr-defined]
        else:
            _error(_click_message(exc))
        sys.exit(int(getattr(exc, "exit_code", ExitCode.ERROR)))
    sys.exit(result if isinstance(result, int) else ExitCode.OK)


def _error(message: str) -> None:
    """``error: MESSAGE`` on stderr, on one line, the message printed as it is (no markup, no wrapping)."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip()) or "unknown error"
    err_console.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True, highlight=False)


def _click_message(exc: BaseException) -> str:
    """A command-line parse error in one line, with where to look: ``No such option: --x (see: ...)``."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None)
    return f"{str(message).rstrip('.')} (see: {command} --help)" if command else str(message)


if __name__ == "__main__":  # pragma: no cover
    main()
