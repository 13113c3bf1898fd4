"""Query policy: the hostile and legitimate corpora, CTE scoping, pinning, re-emission and policy knobs."""

from __future__ import annotations

import pickle

import pytest
from sqlglot import exp

import omop.sql_policy.validator as validator_module
from omop.errors import UsageError
from omop.sql_policy import (
    DEFAULT_POLICY,
    REASON_CODES,
    QueryPolicy,
    QueryRejected,
    ValidatedQuery,
    refusal_reason,
    validate,
)
from omop.sql_policy.allowlist import ANONYMOUS_FUNCTIONS, FUNCTIONS
from tests.omop.sql_corpus import (
    ALLOWED_CALLS,
    ALLOWED_WINDOW_CALLS,
    FLIP_EXAMPLE,
    HOSTILE,
    LEGIT,
    REFUSED_CALLS,
)


def _code(sql: str, policy: QueryPolicy = DEFAULT_POLICY) -> str:
    with pytest.raises(QueryRejected) as info:
        validate(sql, policy)
    return info.value.code


def _tables(query: ValidatedQuery) -> list[exp.Table]:
    return [t for t in query.ast.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]


# -- corpora ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "code", "category"), HOSTILE, ids=[f"{c}-{i}" for i, (_, _, c) in enumerate(HOSTILE)]
)
def test_hostile_corpus_rejected_with_expected_code(sql: str, code: str, category: str) -> None:
    assert code in REASON_CODES
    assert _code(sql) == code


def test_hostile_corpora_cover_every_reason_code_but_internal() -> None:
    from tests.omop.person_local_corpus import PERSON_LOCAL_HOSTILE

    covered = {code for _, code, _ in HOSTILE} | {code for _, code, _ in PERSON_LOCAL_HOSTILE}
    assert covered == set(REASON_CODES) - {"internal_error"}


@pytest.mark.parametrize(("name", "sql"), LEGIT, ids=[name for name, _ in LEGIT])
def test_legit_corpus_accepted(name: str, sql: str) -> None:
    query = validate(sql)
    assert "person_id" in query.output_columns
    assert len(set(query.output_columns)) == len(query.output_columns)
    assert "omop." in query.sql
    assert "--" not in query.sql and "/*" not in query.sql
    assert not query.sql.rstrip().endswith(";")


@pytest.mark.parametrize(("name", "sql"), LEGIT, ids=[name for name, _ in LEGIT])
def test_re_emitted_sql_revalidates_to_itself(name: str, sql: str) -> None:
    first = validate(sql)
    second = validate(first.sql)
    assert second.sql == first.sql
    assert second.output_columns == first.output_columns


@pytest.mark.parametrize(("name", "sql"), LEGIT, ids=[name for name, _ in LEGIT])
def test_every_relation_is_pinned_or_a_cte(name: str, sql: str) -> None:
    query = validate(sql)
    cte_names = {cte.alias_or_name.lower() for cte in query.ast.find_all(exp.CTE)}
    for table in _tables(query):
        if table.args.get("db") is None:
            assert table.name.lower() in cte_names
        else:
            assert table.args["db"].name == "omop"


def test_flip_worked_example_passes_with_its_columns() -> None:
    query = validate(FLIP_EXAMPLE)
    assert query.output_columns == ("person_id", "Patient ID", "Gender", "accession_id", "Image date")
    assert "LEFT JOIN gender_concept ON" in query.sql  # CTE references stay unqualified
    assert "FROM omop.person AS p" in query.sql


# -- CTE scoping and pinning -----------------------------------------------------------------------
def test_unqualified_table_is_pinned_to_omop() -> None:
    assert validate("SELECT person_id FROM person").sql == "SELECT person_id FROM omop.person"


def test_cte_reference_is_not_pinned() -> None:
    query = validate("WITH c AS (SELECT person_id FROM person) SELECT c.person_id FROM c")
    assert query.sql == "WITH c AS (SELECT person_id FROM omop.person) SELECT c.person_id FROM c"


def test_table_named_like_a_cte_outside_its_scope_is_pinned() -> None:
    sql = (
        "SELECT s.person_id FROM (WITH death AS (SELECT person_id FROM person) SELECT death.person_id "
        "FROM death) s JOIN death ON death.person_id = s.person_id"
    )
    query = validate(sql)
    assert "SELECT death.person_id FROM death)" in query.sql  # inside its WITH: the CTE
    assert "JOIN omop.death ON" in query.sql  # outside: a relation in omop


def test_non_recursive_cte_does_not_see_itself_or_later_siblings() -> None:
    query = validate(
        "WITH death AS (SELECT person_id FROM person), person AS (SELECT person_id FROM death) "
        "SELECT death.person_id FROM death"
    )
    assert "death AS (SELECT person_id FROM omop.person)" in query.sql  # defined later: a relation
    assert "person AS (SELECT person_id FROM death)" in query.sql  # an earlier sibling: the CTE
    query = validate("WITH death AS (SELECT person_id FROM death) SELECT death.person_id FROM death")
    assert "death AS (SELECT person_id FROM omop.death)" in query.sql


def test_recursive_cte_is_refused_whatever_it_does() -> None:
    assert (
        _code(
            "WITH RECURSIVE a AS (SELECT person_id FROM b), b AS (SELECT person_id FROM omop.person) "
            "SELECT a.person_id FROM a"
        )
        == "recursive_query"
    )
    assert (
        _code(
            "WITH RECURSIVE r AS (SELECT person_id FROM omop.person UNION SELECT r.person_id FROM r) "
            "SELECT r.person_id FROM r"
        )
        == "recursive_query"
    )


def test_cte_is_visible_in_nested_subqueries_and_every_set_branch() -> None:
    query = validate(
        "WITH c AS (SELECT person_id FROM omop.person) SELECT c.person_id FROM c "
        "WHERE c.person_id IN (SELECT person_id FROM c) UNION SELECT person_id FROM c"
    )
    assert "omop.c" not in query.sql


def test_qualified_name_never_refers_to_a_cte() -> None:
    query = validate("WITH person AS (SELECT 1 AS x) SELECT p.person_id FROM omop.person p")
    assert "FROM omop.person AS p" in query.sql


def test_pinned_ast_is_returned() -> None:
    query = validate("SELECT p.person_id FROM person p")
    (table,) = _tables(query)
    assert table.args["db"].name == "omop"
    assert query.ast.sql(dialect="postgres") == query.sql


# -- output columns --------------------------------------------------------------------------------
def test_output_columns_fold_unquoted_and_keep_quoted() -> None:
    query = validate('SELECT P.Person_ID, p.Year_Of_Birth AS "YoB", p.Gender_Concept_Id FROM omop.person p')
    assert query.output_columns == ("person_id", "YoB", "gender_concept_id")


def test_no_person_id_message_is_clear_not_a_privacy_refusal() -> None:
    with pytest.raises(QueryRejected) as info:
        validate("SELECT year_of_birth FROM omop.person")
    assert info.value.code == "no_person_id"
    assert "must select a person_id column" in info.value.message
    assert "threshold" not in info.value.message


def test_cte_column_list_may_name_person_id_over_a_person_id_column() -> None:
    query = validate(
        "WITH c(person_id, yob) AS (SELECT p.person_id, p.year_of_birth FROM omop.person p) SELECT * FROM c"
    )
    assert query.output_columns == ("person_id", "yob")
    assert (
        _code(
            "WITH c(person_id, yob) AS (SELECT p.year_of_birth, p.person_id FROM omop.person p) "
            "SELECT * FROM c"
        )
        == "person_id_lineage"
    )
    # The first branch's names do not matter behind a column list: every branch is checked by position.
    assert (
        _code(
            "WITH c(person_id) AS (SELECT p.person_id AS pid FROM omop.person p UNION ALL "
            "SELECT m.measurement_id FROM omop.measurement m) SELECT c.person_id FROM c"
        )
        == "person_id_lineage"
    )


def test_star_from_base_table_is_refused_but_from_subquery_is_expanded() -> None:
    assert _code("SELECT * FROM omop.person") == "no_person_id"
    query = validate("SELECT * FROM (SELECT person_id, year_of_birth AS y FROM omop.person) s")
    assert query.output_columns == ("person_id", "y")
    assert _code("SELECT * FROM (SELECT * FROM omop.person) s") == "no_person_id"
    assert (
        _code("SELECT s.* FROM (SELECT person_id FROM omop.person) s JOIN omop.death d USING (person_id)")
        == "no_person_id"
    )


def test_union_output_names_come_from_the_first_branch() -> None:
    query = validate(
        "SELECT co.person_id, co.condition_start_date AS event_date FROM omop.condition_occurrence co "
        "UNION SELECT d.person_id, d.death_date FROM omop.death d"
    )
    assert query.output_columns == ("person_id", "event_date")


# -- re-emission -----------------------------------------------------------------------------------
def test_re_emit_drops_comments_and_semicolon() -> None:
    query = validate("SELECT /* hint */ person_id -- why\nFROM omop.person;")
    assert query.sql == "SELECT person_id FROM omop.person"


def test_re_emit_normalises_string_quoting() -> None:
    query = validate("SELECT person_id FROM omop.person WHERE gender_source_value = $tag$it's$tag$")
    assert query.sql.endswith("gender_source_value = 'it''s'")


def test_re_emit_keeps_quoted_identifiers_exact() -> None:
    query = validate('SELECT p.person_id, p.year_of_birth AS "a""b" FROM omop.person p')
    assert '"a""b"' in query.sql
    assert query.output_columns == ("person_id", 'a"b')


# -- fail closed -----------------------------------------------------------------------------------
def test_unexpected_exception_becomes_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(root: exp.Expression) -> tuple[str, ...]:
        raise RuntimeError("boom")

    monkeypatch.setattr(validator_module, "output_columns", explode)
    assert _code("SELECT person_id FROM omop.person") == "internal_error"


def test_non_text_input_is_rejected() -> None:
    assert _code(b"SELECT person_id FROM omop.person") == "parse_error"  # type: ignore[arg-type]
    assert _code(None) == "parse_error"  # type: ignore[arg-type]


def test_lone_surrogate_is_rejected() -> None:
    assert _code("SELECT person_id FROM omop.person WHERE person_source_value = '\ud800'") == "parse_error"


def test_deep_nesting_is_rejected_not_crashed() -> None:
    sql = "SELECT person_id FROM omop.person WHERE " + "NOT " * 2000 + "true"
    assert _code(sql) in {"parse_error", "too_large"}


# -- the exception ---------------------------------------------------------------------------------
def test_query_rejected_is_a_one_line_usage_error_and_pickles() -> None:
    exc = QueryRejected("forbidden_function", "function pg_sleep() is\nnot allowed")
    assert isinstance(exc, UsageError)
    assert exc.exit_code == 2
    assert str(exc) == "query rejected (forbidden_function): function pg_sleep() is not allowed"
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert (again.code, again.message) == (exc.code, exc.message)


def test_unknown_reason_code_becomes_internal_error() -> None:
    assert QueryRejected("made_up", "x").code == "internal_error"


# -- policy knobs ----------------------------------------------------------------------------------
def test_max_bytes_counts_utf8_bytes() -> None:
    policy = QueryPolicy(max_bytes=64)
    ok = "SELECT person_id FROM omop.person WHERE gender_source_value='é'"
    assert len(ok.encode()) == 64
    validate(ok, policy)
    two = ok.replace("'é'", "'éé'")
    assert len(two) == 64 and len(two.encode()) == 66  # within the cap in characters, not in bytes
    assert _code(two, policy) == "too_large"


def test_extra_allowed_functions_extend_the_allowlist() -> None:
    sql = "SELECT p.person_id, to_json(p.year_of_birth) AS j FROM omop.person p"
    assert _code(sql) == "forbidden_function"
    validate(sql, QueryPolicy(extra_allowed_functions=frozenset({"to_json"})))
    typed = "SELECT p.person_id, md5(p.gender_source_value) AS h FROM omop.person p"
    assert _code(typed) == "forbidden_function"
    validate(typed, QueryPolicy(extra_allowed_functions=frozenset({"md5"})))


@pytest.mark.parametrize(
    "name",
    [
        "pg_sleep",
        "pg_read_file",
        "dblink",
        "dblink_exec",
        "lo_import",
        "set_config",
        "current_setting",
        "version",
        "nextval",
        "txid_current",
        "query_to_xml",
        "current_user",
        "public.f",
        "Upper",
        "",
        "a b",
    ],
)
def test_dangerous_or_malformed_extra_functions_are_refused(name: str) -> None:
    assert refusal_reason(name) is not None
    with pytest.raises(ValueError, match="extra allowed function"):
        QueryPolicy(extra_allowed_functions=frozenset({name}))


def test_extra_functions_still_cannot_touch_identifiers() -> None:
    policy = QueryPolicy(extra_allowed_functions=frozenset({"md5"}))
    sql = "SELECT p.person_id, md5(p.person_source_value) AS h FROM omop.person p"
    assert _code(sql, policy) == "opaque_identifier"


def test_generate_series_is_refused_even_when_small() -> None:
    sql = "SELECT p.person_id, g.n AS n FROM omop.person p, generate_series(1, 2) AS g(n)"
    assert _code(sql) == "generated_rows"


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"schema": "Omop"}, {"schema": "pg_x"}])
def test_invalid_policy_values_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QueryPolicy(**kwargs)  # type: ignore[arg-type]


def test_other_schema_policy_pins_to_that_schema() -> None:
    policy = QueryPolicy(schema="cdm")
    assert validate("SELECT person_id FROM person", policy).sql == "SELECT person_id FROM cdm.person"
    assert _code("SELECT person_id FROM omop.person", policy) == "forbidden_schema"


# -- the allowlist is what the docs say ------------------------------------------------------------
@pytest.mark.parametrize("call", ALLOWED_CALLS)
def test_documented_functions_are_allowed(call: str) -> None:
    validate(f"SELECT p.person_id, {call} AS v FROM omop.person p GROUP BY p.person_id")


@pytest.mark.parametrize(("call", "code"), sorted(REFUSED_CALLS.items()))
def test_documented_refused_functions_are_refused_with_their_reason(call: str, code: str) -> None:
    assert _code(f"SELECT p.person_id, {call} AS v FROM omop.person p GROUP BY p.person_id") == code


@pytest.mark.parametrize("call", ALLOWED_WINDOW_CALLS)
def test_documented_window_functions_are_allowed(call: str) -> None:
    validate(
        f"SELECT p.person_id, {call} OVER (PARTITION BY p.person_id ORDER BY p.year_of_birth) AS v "
        "FROM omop.person p"
    )


def test_allowlists_are_not_empty_and_exclude_dangerous_names() -> None:
    assert len(FUNCTIONS) > 60
    assert not {n for n in ANONYMOUS_FUNCTIONS if refusal_reason(n) is not None}
