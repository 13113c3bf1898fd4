"""Fuzzing the validator: whatever the text, it returns a ValidatedQuery or raises QueryRejected.

Anything it accepts must be stable: the re-emitted SQL validates again to exactly the same SQL and
columns, carries no comments, and every relation in it is pinned to omop or is a CTE.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import Dialect, exp
from sqlglot.tokenizer_core import Token

from omop.sql_policy import REASON_CODES, QueryRejected, ValidatedQuery, validate
from omop.sql_policy.names import pg_name
from tests.omop.sql_corpus import HOSTILE, LEGIT

_CORPUS = [sql for _, sql in LEGIT] + [sql for sql, _, _ in HOSTILE if len(sql) < 2000]
_TOKENS = sorted({tok for sql in _CORPUS for tok in re.findall(r"\w+|[^\w\s]+", sql)})
_SPECIALS = [";", "--", "/*", "*/", "$$", "'", '"', "U&", "\\", "\x00", "(", ")", ",", ".", "::", "E'", "\n"]

_FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_outcome(sql: str) -> ValidatedQuery | None:
    try:
        result = validate(sql)
    except QueryRejected as exc:
        assert exc.code in REASON_CODES
        assert "\n" not in str(exc)
        return None
    assert isinstance(result, ValidatedQuery)
    _check_accepted(result)
    return result


def _tokens(sql: str) -> list[Token]:
    return list(Dialect.get_or_raise("postgres").tokenize(sql))


def _check_accepted(result: ValidatedQuery) -> None:
    assert "person_id" in result.output_columns
    again = validate(result.sql)
    assert again.sql == result.sql
    assert again.output_columns == result.output_columns
    assert not any(token.comments for token in _tokens(result.sql))  # "--" inside a string is fine
    ctes = {pg_name(cte.args["alias"].this) for cte in result.ast.find_all(exp.CTE)}
    for table in result.ast.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            db = table.args.get("db")
            assert (db is not None and pg_name(db) == "omop") or (db is None and pg_name(table.this) in ctes)
            assert not (pg_name(table.this) or "").startswith("pg_")
    for call in result.ast.find_all(exp.Anonymous):
        assert not str(call.name).lower().startswith(("pg_", "dblink", "lo_"))


@_FUZZ
@given(st.text(max_size=400))
def test_random_text(sql: str) -> None:
    _check_outcome(sql)


@_FUZZ
@given(st.lists(st.sampled_from(_TOKENS + _SPECIALS), max_size=40), st.sampled_from([" ", "", "\n"]))
def test_random_token_soup(tokens: list[str], sep: str) -> None:
    _check_outcome(sep.join(tokens))


@_FUZZ
@given(
    st.lists(st.sampled_from(_CORPUS), min_size=1, max_size=3),
    st.sampled_from([" ", "; ", " UNION ", "\n--\n"]),
)
def test_concatenated_corpus_queries(parts: list[str], joiner: str) -> None:
    _check_outcome(joiner.join(parts))


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    sql = draw(st.sampled_from(_CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        if not sql:
            break
        pos = draw(st.integers(0, len(sql)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "swap_case"]))
        if action == "insert":
            piece = draw(st.one_of(st.sampled_from(_TOKENS + _SPECIALS), st.text(max_size=3)))
            sql = sql[:pos] + " " + piece + " " + sql[pos:]
        elif action == "delete":
            end = min(len(sql), pos + draw(st.integers(1, 12)))
            sql = sql[:pos] + sql[end:]
        elif action == "duplicate":
            end = min(len(sql), pos + draw(st.integers(1, 40)))
            sql = sql[:end] + sql[pos:end] + sql[end:]
        else:
            end = min(len(sql), pos + draw(st.integers(1, 20)))
            sql = sql[:pos] + sql[pos:end].swapcase() + sql[end:]
    return sql


@_FUZZ
@given(_mutated())
def test_mutated_corpus_queries(sql: str) -> None:
    _check_outcome(sql)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([sql for _, sql in LEGIT]), st.sampled_from([*_SPECIALS, "pg_sleep(1)", "pg_class"]))
def test_legit_query_with_junk_appended_never_accepts_the_junk(sql: str, junk: str) -> None:
    # Junk may survive only as a harmless name (e.g. a table alias); _check_accepted proves no pg_* call or
    # relation made it into an accepted tree.
    _check_outcome(sql + " " + junk)
