"""The one exception the query policy raises, with a stable reason code.

The code is part of the contract between trust, hub and researcher: the hub shows it, tests assert it and
audit logs record it, so codes never change meaning. The message is for humans and may be reworded.
"""

from __future__ import annotations

from omop.errors import QueryRejected as QueryRejected

#: Every reason code :func:`omop.sql_policy.validate` can raise, with a one-line meaning.
REASON_CODES: dict[str, str] = {
    "too_large": "the query text is longer than the policy allows",
    "nul_byte": "the query text contains a NUL byte",
    "empty": "the query text is empty or only whitespace/comments",
    "parse_error": "the query is not valid PostgreSQL as the validator understands it",
    "multiple_statements": "more than one statement, or anything after the statement's semicolon",
    "not_select": "the statement is not a SELECT query (utility statement, VALUES, EXPLAIN, ...)",
    "data_modifying": "the query contains INSERT/UPDATE/DELETE/MERGE/DDL anywhere, e.g. a writable CTE",
    "select_into": "SELECT ... INTO creates a table",
    "locking_clause": "FOR UPDATE/SHARE clauses take row locks",
    "forbidden_schema": "a table outside the omop schema, or a catalog/database qualifier",
    "system_catalog": "a system catalog (pg_catalog, information_schema, pg_* relations)",
    "forbidden_function": "a function that is not on the allowlist (or is schema-qualified/quoted)",
    "forbidden_type": "a cast to a type outside the allowlist (reg* name-resolving types, user types)",
    "non_literal_limit": "LIMIT/OFFSET/FETCH (in a correlated subquery) that is not a non-negative integer",
    "unsupported_syntax": "a construct the validator does not allow (parameters, operators, field access...)",
    "no_person_id": "the cohort does not output a person_id column",
    "unnamed_column": "a computed cohort column has no name (give it one with AS)",
    "duplicate_column": "two cohort columns share a name",
    "person_id_lineage": "a person_id column that may not hold person ids (renamed/computed/misaligned)",
    # the person-local language (docs/query-policy.md)
    "unknown_table": "a table that does not exist in the CDM (or a WITH query that is not defined)",
    "unknown_column": "a column that none of the query's tables has",
    "ambiguous_column": "an unqualified column name that more than one table of the query has",
    "non_person_table": "a CDM table that is neither a person's data nor vocabulary (cdm_source, ...)",
    "cross_person_join": "person tables joined other than on person_id or an event key",
    "cross_person_subquery": "a subquery over person data neither correlated on person_id nor a person set",
    "cross_person_aggregate": "an aggregate over person data not grouped by person_id (or ROLLUP/CUBE/...)",
    "cross_person_window": "a window function over person data not partitioned by person_id",
    "cross_person_row_choice": "LIMIT/OFFSET/FETCH or DISTINCT ON choosing rows across persons",
    "cross_person_output": "a query over person data whose rows do not carry their person key",
    "lookup_not_anchored": "care_site/location/provider not joined by its key from a person's row",
    "reference_join": "a vocabulary table joined to person data without an equality",
    "unsupported_join": "RIGHT, FULL or NATURAL joins",
    "opaque_identifier": "an identifier (person_id, record id, person_source_value) used as a value",
    "generated_rows": "rows made out of nothing: generate_series, unnest, VALUES, table functions",
    "recursive_query": "WITH RECURSIVE",
    "unsafe_cast": "a cast that can fail on some values",
    "error_prone_function": "a function that can fail (or explode in size) on some values",
    "invalid_pattern": "a LIKE/regex pattern, date field or unit that is not a valid literal",
    "literal_out_of_range": "a literal (number, interval, offset, length, fraction) outside what is safe",
    "unsupported_operation": "arithmetic between types the cohort language does not define",
    "scalar_subquery_rows": "a subquery used as a value that could return more than one row",
    "too_complex": "more arithmetic operations on data than the limit",
    "internal_error": "the validator failed unexpectedly; the query is refused (fail closed)",
}
