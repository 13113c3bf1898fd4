"""What a trust may tune in the query policy, and what it may not.

``QueryPolicy`` is deliberately small: the shape rules (one read-only SELECT over ``omop`` in the
person-local cohort language) are not configurable. A trust may raise or lower the size cap and add
ordinary functions to the allowlist; an added function takes values only, never identifiers, and the
trust vouches that it cannot fail. Names that reach outside the data (files, other databases, settings,
sessions, large objects, sequences, server identity) can never be added, so a typo or an over-generous
policy file cannot reopen the holes the allowlist exists to close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_MAX_BYTES = 10 * 1024
DEFAULT_SCHEMA = "omop"

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

#: Prefixes of function names that can never be allowed, whatever the trust's policy says.
NEVER_ALLOWED_PREFIXES: tuple[str, ...] = (
    "pg_",
    "dblink",
    "lo_",
    "txid_",
    "xid",
    "inet_",
    "has_",
    "current_",
    "session_",
    "set_",
    "query_to_",
    "table_to_",
    "cursor_to_",
    "schema_to_",
    "database_to_",
    "binary_upgrade",
    "brin_",
    "gin_",
    "ts_stat",
)

#: Exact function names that can never be allowed, whatever the trust's policy says.
NEVER_ALLOWED_NAMES: frozenset[str] = frozenset(
    {
        "version",
        "nextval",
        "setval",
        "currval",
        "lastval",
        "user",
        "current_user",
        "session_user",
        "current_setting",
        "set_config",
        "row_security_active",
        "format_type",
        "to_regclass",
        "to_regproc",
        "to_regprocedure",
        "to_regtype",
        "to_regrole",
        "to_regnamespace",
        "to_regoper",
        "to_regoperator",
        "to_regcollation",
        "obj_description",
        "col_description",
        "shobj_description",
        "dblink",
        "clock_timestamp",
        "timeofday",
        "random",
        "setseed",
        "gen_random_uuid",
        "uuid_generate_v4",
        "json_populate_record",
        "jsonb_populate_record",
        "xmlparse",
        "xpath",
    }
)


def refusal_reason(name: str) -> str | None:
    """Why ``name`` cannot be added to the function allowlist, or None if it may be."""
    if not _NAME.fullmatch(name):
        return "must be a plain lowercase function name (letters, digits, underscore; no schema)"
    if name in NEVER_ALLOWED_NAMES or name.startswith(NEVER_ALLOWED_PREFIXES):
        return "reaches outside the cohort data and can never be allowed"
    return None


@dataclass(frozen=True)
class QueryPolicy:
    """The tunable part of the query policy (immutable; build a new one to change it).

    ``max_bytes`` caps the UTF-8 size of the query text; ``extra_allowed_functions`` adds lowercase names to
    the function allowlist; ``schema`` is the only schema tables may come from.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    extra_allowed_functions: frozenset[str] = field(default_factory=frozenset)
    schema: str = DEFAULT_SCHEMA

    def __post_init__(self) -> None:
        if not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if not _NAME.fullmatch(self.schema) or self.schema.startswith("pg_"):
            raise ValueError(f"schema must be a plain lowercase identifier, not {self.schema!r}")
        names = frozenset(self.extra_allowed_functions)
        for name in sorted(names):
            reason = refusal_reason(name)
            if reason is not None:
                raise ValueError(f"extra allowed function {name!r} {reason}")
        object.__setattr__(self, "extra_allowed_functions", names)


DEFAULT_POLICY = QueryPolicy()
