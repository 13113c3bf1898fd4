"""``omopfed keys``: create the hub's and trusts' keys and exchange their public parts.

A thin shell over ``omop.keys``: every failure there is a one-line ``OmopFedError`` that the CLI root
prints without a traceback. Output names files and key ids only, never key material. Key ids are printed
so that operators can confirm them with each other over a second channel (phone, video call) at onboarding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omop.errors import ExitCode
from omop.keys import (
    HUB_PUBLIC,
    describe_dir,
    generate_hub_keys,
    generate_trust_key,
    pin_hub,
    register_trust,
    trust_public_name,
)

app = typer.Typer(no_args_is_help=True, help="Create and exchange signing and encryption keys.")

Force = Annotated[bool, typer.Option("--force", help="Replace existing key files (old keys stop working).")]
Replace = Annotated[
    bool, typer.Option("--replace", help="Replace a different key already recorded (rotation).")
]


@app.command("hub")
def hub_keys(
    out: Annotated[Path, typer.Option("--out", help="Directory for the hub's keys (created 0700).")],
    force: Force = False,
) -> None:
    """Create the hub's task-signing and result-encryption keys, and hub.pub.json for the trusts."""
    public = generate_hub_keys(out, force=force)
    typer.echo(f"hub keys written to {out}")
    typer.echo(f"  signing key id:    {public.signing_key_id}")
    typer.echo(f"  encryption key id: {public.encryption_key_id}")
    typer.echo(f"send {out / HUB_PUBLIC} to each trust; they pin it with 'omopfed keys pin-hub'.")


@app.command("trust")
def trust_key(
    trust_id: Annotated[str, typer.Argument(help="The trust's id (lowercase letters, digits, '_' or '-').")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the trust's key (created 0700).")],
    force: Force = False,
) -> None:
    """Create a trust's result-signing key and its public file for the hub operator."""
    public = generate_trust_key(trust_id, out, force=force)
    typer.echo(f"trust {public.trust_id} key written to {out}")
    typer.echo(f"  signing key id: {public.key_id}")
    typer.echo(
        f"send {out / trust_public_name(public.trust_id)} to the hub operator "
        "and confirm the key id with them by another channel."
    )


_OUTCOME = {"added": "registered", "unchanged": "already registered (same key)", "replaced": "replaced"}


@app.command("register-trust")
def register_trust_cmd(
    public_file: Annotated[Path, typer.Argument(help="The trust's trust_<id>.pub.json.")],
    hub_dir: Annotated[Path, typer.Option("--hub-dir", help="The hub's key directory.")],
    replace: Replace = False,
) -> None:
    """Record a trust's public key in the hub's registry (HUB_DIR/trusts/<id>.pub.json)."""
    trust, outcome = register_trust(hub_dir, public_file, replace=replace)
    typer.echo(f"trust {trust.trust_id}: {_OUTCOME[outcome]}, key id {trust.key_id}")
    if outcome != "unchanged":
        typer.echo("confirm this key id with the trust by another channel before sending it tasks.")


@app.command("pin-hub")
def pin_hub_cmd(
    hub_public_file: Annotated[Path, typer.Argument(help="The hub's hub.pub.json.")],
    trust_dir: Annotated[Path, typer.Option("--trust-dir", help="The trust's key directory.")],
    replace: Replace = False,
) -> None:
    """Pin the hub's public keys at a trust (TRUST_DIR/hub.pub.json)."""
    hub, outcome = pin_hub(trust_dir, hub_public_file, replace=replace)
    word = {"added": "pinned", "unchanged": "already pinned (same keys)", "replaced": "re-pinned"}[outcome]
    typer.echo(f"hub keys {word}: signing {hub.signing_key_id}, encryption {hub.encryption_key_id}")
    if outcome != "unchanged":
        typer.echo("confirm these key ids with the hub operator by another channel.")


@app.command("list")
def list_keys(
    directory: Annotated[Path, typer.Option("--dir", help="A hub or trust key directory.")],
) -> None:
    """Show the key files in a directory with their key ids (never the keys themselves).

    Exit codes: 0 every key file is sound, 1 some file has a problem (marked PROBLEM).
    """
    entries = describe_dir(directory)
    if not entries:
        typer.echo(f"no key files in {directory}")
        return
    width = max(len(str(e.path.relative_to(directory))) for e in entries)
    problems = 0
    for entry in entries:
        name = str(entry.path.relative_to(directory)).ljust(width)
        if entry.problem:
            problems += 1
            typer.echo(f"{name}  {entry.description}: PROBLEM: {entry.problem}")
        else:
            typer.echo(f"{name}  {entry.description}: {entry.key_ids}")
    if problems:
        raise typer.Exit(ExitCode.ERROR)
