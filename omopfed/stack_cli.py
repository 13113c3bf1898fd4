"""``omopfed stack up|info|stop|start|down`` and ``omopfed demo``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from omopfed import stack as stack_mod
from omopfed.broker_config import DEFAULT_MAXMEMORY, MAXMEMORY_OPTION

stack_app = typer.Typer(no_args_is_help=True, help="A whole federation on this machine, on loopback.")
err = Console(stderr=True)


@stack_app.command("up")
def up_cmd(
    directory: Path = typer.Option(..., "--dir", help="New or empty directory for the stack's state."),
    trusts: int = typer.Option(3, "--trusts", help="Number of trusts (1-64)."),
    persons: int = typer.Option(2000, "--persons", help="Synthetic persons per trust."),
    eunomia: bool = typer.Option(
        False, "--eunomia", help="Load one Eunomia GiBleed shard per trust instead."
    ),
    broker_maxmemory: str = typer.Option(
        DEFAULT_MAXMEMORY,
        MAXMEMORY_OPTION,
        help="Broker memory limit (e.g. 256mb, 2gb); when full it refuses new tasks instead of dropping any.",
    ),
    privacy: str = typer.Option(
        "dp", "--privacy", help="dp (noisy figures, a budget per project) or exact (thresholds only)."
    ),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="Privacy loss per query at each trust (dp; default 1.0)."
    ),
    budget: float | None = typer.Option(
        None, "--budget", help="Privacy budget per project at each trust (dp; default 10.0)."
    ),
) -> None:
    """Start broker, a PostgreSQL per trust, keys, workers and the hub reducer; return when healthy."""
    state = stack_mod.up(
        directory,
        trusts=trusts,
        persons=persons,
        eunomia=eunomia,
        broker_maxmemory=broker_maxmemory,
        privacy=privacy,
        epsilon=epsilon,
        budget=budget,
        progress=lambda m: err.print(f"[dim]•[/] {m}"),
    )
    env = Path(state.dir) / stack_mod.ENV_FILE
    err.print(f"[green]stack up[/] in {state.dir}: {len(state.trusts)} trust(s)")
    err.print(f"try: omopfed hub submit --env-file {env} --sql 'SELECT person_id FROM person'")


@stack_app.command("info")
def info_cmd(
    directory: Path = typer.Option(..., "--dir"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Where everything of a running stack is: broker URL, databases, env files, PIDs."""
    info = stack_mod.StackState.load(directory.resolve()).info()
    if as_json:
        print(json.dumps(info, sort_keys=True))
        return
    err.print_json(json.dumps(info))


@stack_app.command("stop")
def stop_cmd(
    directory: Path = typer.Option(..., "--dir"),
    service: str = typer.Option(..., "--service", help="broker, reducer, worker-<id> or db-<id>."),
    signal_name: str = typer.Option(
        "TERM", "--signal", help="TERM (graceful), KILL (at once) or STOP (freeze; start thaws it)."
    ),
) -> None:
    """Stop (or freeze) one service of a running stack: for operators and fault drills."""
    state = stack_mod.StackState.load(directory.resolve())
    stack_mod.stop_service(state, service, signal_name)
    err.print(f"{service}: {signal_name.upper()} sent")


@stack_app.command("start")
def start_cmd(
    directory: Path = typer.Option(..., "--dir"),
    service: str = typer.Option(..., "--service", help="broker, reducer, worker-<id> or db-<id>."),
) -> None:
    """Start a stopped service again (same port and data), or thaw a frozen one; returns when it is up."""
    state = stack_mod.StackState.load(directory.resolve())
    stack_mod.start_service(state, service)
    err.print(f"{service}: running")


@stack_app.command("down")
def down_cmd(directory: Path = typer.Option(..., "--dir")) -> None:
    """Stop everything the stack started and remove what it created."""
    stack_mod.down(stack_mod.StackState.load(directory.resolve()), progress=err.print)


def demo_cmd(
    trusts: int = typer.Option(3, "--trusts", help="Number of trusts."),
    persons: int = typer.Option(2000, "--persons", help="Synthetic persons per trust."),
) -> None:
    """Start a stack, run a few illustrative federated queries, show the results, stop the stack."""
    from omopfed.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="omopfed-demo-") as tmp:
        run_demo(Path(tmp) / "stack", trusts=trusts, persons=persons)


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
    app.command("demo")(demo_cmd)
