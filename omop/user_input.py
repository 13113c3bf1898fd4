"""Reading files a user named on the command line, with one-line errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path

from omop.errors import UsageError


def read_text(path: Path, option: str) -> str:
    """The UTF-8 text of ``path``, or a ``UsageError`` naming the ``option`` and what went wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {option} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {exc.strerror or exc}") from None
