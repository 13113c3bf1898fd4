"""The published OHDSI Eunomia GiBleed counts, reproduced through the whole federation (3 shards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omopfed import stack as stack_mod
from omopfed.stack import StackState
from tests.cli_runner import hub_submit_json
from trust_worker.concepts import GI_BLEED

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    directory = tmp_path_factory.mktemp("eunomia") / "stack"
    state = stack_mod.up(directory, trusts=3, eunomia=True, privacy="exact")
    try:
        yield state
    finally:
        stack_mod.down(state)


def test_gi_bleed_cohort_is_479_persons(stack: StackState) -> None:
    code, report = hub_submit_json(
        Path(stack.dir) / "stack.env",
        "--sql",
        f"SELECT person_id FROM condition_occurrence WHERE condition_concept_id = {GI_BLEED}",
    )
    assert code == 0 and report["status"] == "complete"
    assert report["federated"]["person_count"] == 479


def test_all_persons_are_2694_with_published_gender_split(stack: StackState) -> None:
    code, report = hub_submit_json(Path(stack.dir) / "stack.env", "--sql", "SELECT person_id FROM person")
    assert code == 0
    assert report["federated"]["person_count"] == 2694
    assert report["federated"]["sex"] == {"Male": 1321, "Female": 1373}
