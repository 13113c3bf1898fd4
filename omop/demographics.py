"""The sex and age categories every trust reports, in the order people read them.

Shared so that a trust's SQL, the hub's pooling and every report agree on the labels and their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omop.disclosure import OTHER_LABEL

SEX_LABELS: tuple[str, ...] = ("Male", "Female", "Unknown")
AGE_BANDS: tuple[str, ...] = (*(f"{d}-{d + 9}" for d in range(0, 90, 10)), "90+", "Unknown")


def in_order(counts: Mapping[str, int], labels: Sequence[str]) -> dict[str, int]:
    """``counts`` with known labels in ``labels`` order, then any others alphabetically, ``Other`` last."""
    rank = {label: i for i, label in enumerate(labels)}
    return dict(
        sorted(counts.items(), key=lambda kv: (kv[0] == OTHER_LABEL, rank.get(kv[0], len(rank)), kv[0]))
    )
