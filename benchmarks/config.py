"""What each mode measures: sizes, repetitions and query counts, in one frozen object per run.

``quick`` must finish in under five minutes on two cores (it is what ``make bench-quick`` runs and what
the smoke test shrinks further); ``full`` adds the million-person populations and the 32-trust stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SUITES = ("startup", "scale", "dispatch", "throughput", "federation", "indb", "flower", "privacy")


@dataclass(frozen=True)
class Config:
    mode: str
    small_persons: int = 200  # per trust, for the suites that measure the transport, not the database
    dispatch_trusts: int = 3
    dispatch_queries: int = 50
    dispatch_warmup: int = 3
    throughput_queries: int = 100
    scale_trusts: tuple[int, ...] = (1, 4, 8)
    scale_repeats: int = 10
    federation_persons: tuple[int, ...] = (10_000, 100_000)
    federation_trusts: int = 3
    federation_repeats: int = 5  # in-process round trips, whole commands and direct executions each
    indb_rows: tuple[int, ...] = (100_000,)
    indb_repeats: int = 3
    flower_trusts: tuple[int, ...] = (2, 5)
    flower_persons: int = 100_000
    flower_repeats: int = 3
    startup_repeats: int = 3
    privacy_draws: int = 300  # noisy releases per population size (the error and coverage of the noise)


QUICK = Config(mode="quick")
FULL = Config(
    mode="full",
    dispatch_queries=200,
    throughput_queries=500,
    scale_trusts=(1, 4, 16, 32),
    scale_repeats=20,
    federation_persons=(10_000, 100_000, 1_000_000),
    indb_rows=(100_000, 1_000_000),
    indb_repeats=5,
    flower_repeats=10,
    startup_repeats=10,
    privacy_draws=2000,
)
MODES = {"quick": QUICK, "full": FULL}


def with_overrides(
    config: Config,
    *,
    queries: int | None = None,
    trusts: int | None = None,
    repeats: int | None = None,
    persons: int | None = None,
) -> Config:
    """The mode's configuration with the command line's overrides (None keeps the mode's value)."""
    c = config
    if queries is not None:
        c = replace(c, dispatch_queries=queries, throughput_queries=queries)
    if trusts is not None:
        c = replace(c, dispatch_trusts=trusts, federation_trusts=trusts)
    if repeats is not None:
        c = replace(
            c,
            scale_repeats=repeats,
            federation_repeats=repeats,
            indb_repeats=repeats,
            flower_repeats=repeats,
            startup_repeats=repeats,
        )
    if persons is not None:
        c = replace(c, small_persons=persons)
    return c
