"""The trust ids a generated federation uses (``t1`` … ``tN``), shared by ``stack`` and ``compose``."""

from __future__ import annotations

from omop.errors import UsageError

MAX_TRUSTS = 64


def trust_ids(count: int) -> list[str]:
    """``t1`` … ``tN``; refuses counts outside 1..MAX_TRUSTS with a usage error."""
    if not 1 <= count <= MAX_TRUSTS:
        raise UsageError(f"--trusts must be between 1 and {MAX_TRUSTS} (got {count})")
    return [f"t{i}" for i in range(1, count + 1)]
