"""``omopfed compose``: print a Docker Compose file for a hub and N trusts, or write a whole deployment.

Without ``--out`` the command only prints YAML (no secrets exist in it, so it is safe to share or diff).
With ``--out DIR`` it writes ``DIR/docker-compose.yml`` and then, as a separate explicit step, creates the
passwords, keys, Redis ACL file and policies the compose file points to (``omopfed.compose_secrets``).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from omop.errors import OmopFedError
from omopfed import compose as spec
from omopfed.broker_config import DEFAULT_MAXMEMORY, MAXMEMORY_OPTION
from omopfed.trust_ids import MAX_TRUSTS, trust_ids

out_console = Console(stderr=True)


def source_build_context(relative_to: Path) -> str | None:
    """The Dockerfile's directory relative to ``relative_to`` when running from a source tree, else None."""
    tree = Path(__file__).resolve().parent.parent
    if not (tree / "Dockerfile").is_file():
        return None
    return os.path.relpath(tree, relative_to.resolve())


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OmopFedError(f"cannot write {path}: {exc.strerror or exc}") from None


def compose_cmd(
    trusts: int = typer.Option(2, "--trusts", help=f"Number of trusts, t1..tN (1-{MAX_TRUSTS})."),
    out: Path | None = typer.Option(
        None, "--out", help="Write docker-compose.yml into DIR and generate its secrets, keys and ACL file."
    ),
    persons: int = typer.Option(
        spec.DEFAULT_PERSONS, "--persons", help="Synthetic persons per trust database (0: schema only)."
    ),
    tls: bool = typer.Option(
        False, "--tls", help="Also the TLS override (docker-compose.tls.yml), certificates and TLS URLs."
    ),
    redis_host: list[str] = typer.Option(
        [],
        "--redis-host",
        help="Extra DNS name or IP for the Redis certificate (how remote trusts reach it).",
    ),
    image: str | None = typer.Option(
        None, "--image", help="Image for the omopfed services (omopfed:VERSION)."
    ),
    build_context: str | None = typer.Option(
        None,
        "--build-context",
        help="Dockerfile directory, relative to the compose file (default: this tree).",
    ),
    no_build: bool = typer.Option(False, "--no-build", help="No build section: use --image as published."),
    broker_maxmemory: str = typer.Option(
        DEFAULT_MAXMEMORY,
        MAXMEMORY_OPTION,
        help="Broker memory limit (e.g. 256mb, 2gb); when full it refuses new tasks instead of dropping any.",
    ),
) -> None:
    """Print (or write, with --out) a Docker Compose deployment: Redis, hub store, reducer, N trusts."""
    ids = trust_ids(trusts)
    base = out if out is not None else Path.cwd()
    context = None if no_build else (build_context or source_build_context(base))
    doc = spec.compose_config(
        ids, persons=persons, build_context=context, image=image, broker_maxmemory=broker_maxmemory
    )
    compose_text = spec.to_yaml(doc, spec.compose_header(ids, broker_maxmemory=broker_maxmemory))
    tls_text = spec.to_yaml(
        spec.tls_override_config(ids, broker_maxmemory=broker_maxmemory),
        spec.compose_header(ids, tls=True, broker_maxmemory=broker_maxmemory),
    )
    if out is None:
        typer.echo(tls_text if tls else compose_text, nl=False)
        return
    _write_deployment(out, ids, compose_text, tls_text if tls else None, redis_host)


def _write_deployment(
    out: Path, ids: list[str], compose_text: str, tls_text: str | None, hosts: list[str]
) -> None:
    from omopfed.compose_secrets import generate

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OmopFedError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OmopFedError(f"cannot write into {out}: permission denied")
    _write(out / spec.COMPOSE_FILE, compose_text)
    if tls_text is not None:
        _write(out / spec.TLS_OVERRIDE_FILE, tls_text)
    try:
        made = generate(out, ids, tls=tls_text is not None, redis_hosts=hosts)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise OmopFedError(f"cannot write the deployment files: {exc.strerror or exc}{where}") from None
    files = f"-f {spec.COMPOSE_FILE}" + (f" -f {spec.TLS_OVERRIDE_FILE}" if tls_text else "")
    say = out_console.print
    say(
        f"wrote {out / spec.COMPOSE_FILE}" + (f" and {spec.TLS_OVERRIDE_FILE}" if tls_text else ""),
        highlight=False,
    )
    say(
        f"{len(made.created)} new secret/key/policy file(s), {len(made.rewritten)} derived file(s) "
        f"under {out / spec.GENERATED_DIR} (existing passwords and keys kept)",
        highlight=False,
    )
    if _sets_old_maxmemory(out / ".env"):
        say(
            f"note: {out / '.env'} sets {OLD_MAXMEMORY_VARIABLE}, which the compose file no longer reads; "
            f"give the size as {MAXMEMORY_OPTION} instead",
            highlight=False,
            soft_wrap=True,
        )
    say(f"next: cd {out} && docker compose {files} up -d --build", highlight=False, soft_wrap=True)


OLD_MAXMEMORY_VARIABLE = "OMOPFED_REDIS_MAXMEMORY"  # read by compose files from before --broker-maxmemory


def _sets_old_maxmemory(dotenv: Path) -> bool:
    try:
        lines = dotenv.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.strip().startswith(f"{OLD_MAXMEMORY_VARIABLE}=") for line in lines)


def register(app: typer.Typer) -> None:
    app.command("compose")(compose_cmd)
