"""The query policy (layers 2 and 3 of the trust's defences), shared so the hub can pre-check with it.

``validate(sql, policy)`` returns a :class:`ValidatedQuery` whose ``sql`` was generated from the validated,
schema-pinned syntax tree, or raises :class:`QueryRejected` with a stable reason code (see
:data:`REASON_CODES` and ``docs/query-policy.md``).
"""

from omop.sql_policy.errors import REASON_CODES, QueryRejected
from omop.sql_policy.policy import DEFAULT_POLICY, QueryPolicy, refusal_reason
from omop.sql_policy.validator import ValidatedQuery, validate

__all__ = [
    "DEFAULT_POLICY",
    "REASON_CODES",
    "QueryPolicy",
    "QueryRejected",
    "ValidatedQuery",
    "refusal_reason",
    "validate",
]
