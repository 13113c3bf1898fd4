"""The person-local cohort language without a database: hostile queries refused with their exact reason,
realistic cohort queries accepted and re-emitted as a fixed point."""

from __future__ import annotations

import inspect

import pytest

from omop.sql_policy import REASON_CODES, QueryRejected, validate
from omop.sql_policy import errors as errors_module
from omop.sql_policy.catalog import LOOKUP_TABLES, catalog
from tests.omop.person_local_corpus import (
    FIXED_HOLES,
    PERSON_LOCAL_HOSTILE,
    PERSON_LOCAL_LEGIT,
    TRICKY_ACCEPTED,
)


def _person_local_codes() -> list[str]:
    """The codes listed after the ``# the person-local language`` marker of REASON_CODES (before
    internal_error, which every validator has)."""
    source = inspect.getsource(errors_module)
    section = source.split("# the person-local language", 1)[1]
    return [code for code in REASON_CODES if f'"{code}":' in section and code != "internal_error"]


@pytest.mark.parametrize(
    ("sql", "code"),
    [(sql, code) for sql, code, _ in PERSON_LOCAL_HOSTILE],
    ids=[f"{family}-{i}" for i, (_, _, family) in enumerate(PERSON_LOCAL_HOSTILE)],
)
def test_hostile_query_is_refused_with_its_code(sql: str, code: str) -> None:
    with pytest.raises(QueryRejected) as refused:
        validate(sql)
    assert refused.value.code == code, refused.value.message
    message = refused.value.message
    assert message.strip() and "\n" not in message and message == message.strip()


@pytest.mark.parametrize(("name", "sql"), PERSON_LOCAL_LEGIT + TRICKY_ACCEPTED, ids=lambda v: str(v)[:40])
def test_legit_query_is_accepted_and_reemitted_stably(name: str, sql: str) -> None:
    first = validate(sql)
    again = validate(first.sql)
    assert again.sql == first.sql
    assert again.output_columns == first.output_columns
    assert "person_id" in first.output_columns


def test_the_corpora_are_as_large_as_promised() -> None:
    assert len(PERSON_LOCAL_HOSTILE) >= 110
    assert len(PERSON_LOCAL_LEGIT) >= 25
    assert len({sql for sql, _, _ in PERSON_LOCAL_HOSTILE}) == len(PERSON_LOCAL_HOSTILE)
    assert len({name for name, _ in PERSON_LOCAL_LEGIT + TRICKY_ACCEPTED}) == len(
        PERSON_LOCAL_LEGIT + TRICKY_ACCEPTED
    )


def test_every_person_local_reason_code_is_in_the_hostile_corpus() -> None:
    codes = _person_local_codes()
    assert "unknown_table" in codes and "too_complex" in codes
    used = {code for _, code, _ in PERSON_LOCAL_HOSTILE}
    assert set(LOOKUP_TABLES) <= set(catalog())
    assert sorted(set(codes) - used) == []
    assert used <= set(REASON_CODES)


@pytest.mark.parametrize(
    ("sql", "code"),
    [(sql, code) for sql, code, _ in FIXED_HOLES],
    ids=[f"{family}-{i}" for i, (_, _, family) in enumerate(FIXED_HOLES)],
)
def test_fixed_hole_is_refused(sql: str, code: str) -> None:
    with pytest.raises(QueryRejected):
        validate(sql)
