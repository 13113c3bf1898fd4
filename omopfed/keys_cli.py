"""``omopfed keys``: placeholder mounted by the root; filled by the transport work."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
