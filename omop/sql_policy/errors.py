"""The one exception the query policy raises, with a stable reason code.

The code is part of the contract between trust, hub and researcher: the hub shows it, tests assert it and
audit logs record it, so codes never change meaning. The message is for humans and may be reworded.
"""

from __future__ import annotations

from omop.errors import UsageError

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
    "unbounded_series": "generate_series without literal bounds, or spanning more than the policy allows",
    "non_literal_limit": "LIMIT/OFFSET/FETCH that is not a non-negative integer literal",
    "unsupported_syntax": "a construct the validator does not allow (parameters, operators, field access...)",
    "no_person_id": "the cohort does not output a person_id column",
    "unnamed_column": "a computed cohort column has no name (give it one with AS)",
    "duplicate_column": "two cohort columns share a name",
    "person_id_lineage": "a person_id column that may not hold person ids (renamed/computed/misaligned)",
    "internal_error": "the validator failed unexpectedly; the query is refused (fail closed)",
}


class QueryRejected(UsageError):
    """The researcher's SQL does not satisfy the query policy.

    ``code`` is one of :data:`REASON_CODES`; ``message`` explains what to change. ``str(exc)`` is one line
    suitable for the CLI.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in REASON_CODES:  # a programming error, but never let it escape as something else
            message = f"{message} (unknown reason code {code!r})"
            code = "internal_error"
        self.code = code
        self.message = " ".join(message.split())
        super().__init__(f"query rejected ({self.code}): {self.message}")

    def __reduce__(self) -> tuple[type[QueryRejected], tuple[str, str]]:
        # Picklable with its two arguments, so it can cross process boundaries (Celery, multiprocessing).
        return (QueryRejected, (self.code, self.message))
