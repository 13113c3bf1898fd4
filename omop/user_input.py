"""Reading the small files a user names (SQL, policies, secrets, keys), with one-line errors.

Every failure is one message of the same form, ``cannot read WHAT PATH: REASON`` (``not found``, ``is a
directory``, ``permission denied``, ``not UTF-8 text``, ``larger than 64 KiB``, ``not a regular file``), or
``refusing WHAT PATH: ...`` for a file others may read that must be private, raised as the caller's error
class (``UsageError`` by default: exit code 2; keys use ``KeyFileError``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from omop.errors import OmopFedError, UsageError


def read_bytes(
    path: Path,
    what: str,
    *,
    error: type[OmopFedError] = UsageError,
    max_bytes: int | None = None,
    regular_only: bool = False,
    refuse_mode: int = 0,
    fix: str = "chmod 600",
) -> bytes:
    """The bytes of ``path``, or ``error("cannot read WHAT PATH: REASON")``.

    ``max_bytes`` refuses a larger file without reading it all (a variable pointing at a log or a device
    fails clearly). ``regular_only`` refuses anything but a regular file (no FIFO, device or directory).
    ``refuse_mode`` refuses a file whose mode has any of these bits (``0o077``: group or others can access
    it) and says to run ``fix``. Both are checked on the file opened, not on whatever the name points to by
    the time of a second look.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if regular_only and not stat.S_ISREG(info.st_mode):
            raise error(f"cannot read {what} {path}: not a regular file")
        if info.st_mode & refuse_mode:
            raise error(
                f"refusing {what} {path}: accessible by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run: {fix} {path}"
            )
        limit = -1 if max_bytes is None else max_bytes + 1
        chunks: list[bytes] = []
        size = 0
        while limit < 0 or size < limit:
            chunk = os.read(fd, 65536 if limit < 0 else min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if max_bytes is not None and size > max_bytes:
        raise error(f"cannot read {what} {path}: larger than {_size(max_bytes)}")
    return b"".join(chunks)


def read_text(
    path: Path,
    what: str,
    *,
    error: type[OmopFedError] = UsageError,
    max_bytes: int | None = None,
) -> str:
    """The UTF-8 text of ``path``; errors as ``read_bytes``, plus ``not UTF-8 text``."""
    data = read_bytes(path, what, error=error, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"cannot read {what} {path}: not UTF-8 text") from None


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not found"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"
