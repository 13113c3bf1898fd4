"""The shape every suite has: units of work, each needing (or not) a stack, then a summary.

A suite plans *units* instead of running itself so the runner can order units across suites by the stack
they need (population, then trust count) and start each kind of stack once. A unit returns one JSON-able
row; the suite's ``summarize`` turns its rows into the suite's section of the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.config import Config
from benchmarks.stacks import Log, Stack

Row = dict[str, Any]


@dataclass(frozen=True)
class Context:
    config: Config
    log: Log
    workdir: Path


@dataclass(frozen=True)
class StackNeed:
    trusts: int
    persons: int


@dataclass(frozen=True)
class Unit:
    suite: str
    label: str
    need: StackNeed | None  # None: runs without a stack
    run: Callable[[Context, Stack | None], Row]

    def sort_key(self) -> tuple[int, int, int]:
        if self.need is None:
            return (0, 0, 0)
        return (1, self.need.persons, -self.need.trusts)


@dataclass(frozen=True)
class Plan:
    """A suite's units, or the reason it is skipped."""

    units: list[Unit]
    skipped: str | None = None


def need_stack(stack: Stack | None) -> Stack:
    if stack is None:
        raise RuntimeError("this unit needs a stack")
    return stack


def ms(seconds: float) -> float:
    return seconds * 1000.0
