"""The one exception type the CLI turns into a one-line message and a non-zero exit code."""

from __future__ import annotations


class OmopFedError(Exception):
    """An error a user can act on. ``str(exc)`` is the whole message: one line, no internals."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(OmopFedError):
    """Bad arguments or input from the user (exit code 2, like a CLI usage error)."""

    exit_code = 2
