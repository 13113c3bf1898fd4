"""Identifier names as PostgreSQL sees them.

PostgreSQL folds unquoted identifiers to lower case (ASCII letters only) and keeps quoted ones exactly, so
``OMOP.person`` is in schema ``omop`` but ``"OMOP".person`` is not. Every name comparison in the validator
goes through :func:`pg_name` so a quoting or case trick cannot make two names look equal (or different)
to the validator when PostgreSQL would disagree.
"""

from __future__ import annotations

from sqlglot import exp

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Lower-case ASCII letters only, like PostgreSQL's identifier folding."""
    return text.translate(_ASCII_LOWER)


def pg_name(ident: exp.Expression | str | None) -> str | None:
    """The name PostgreSQL would use for ``ident`` (None when absent)."""
    if ident is None:
        return None
    if isinstance(ident, str):
        return fold(ident)
    if isinstance(ident, exp.Identifier):
        return str(ident.this) if ident.quoted else fold(str(ident.this))
    return None


SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})


def is_system_schema(name: str) -> bool:
    """``pg_catalog``, ``information_schema`` and every ``pg_*`` schema (temp and toast schemas too)."""
    return name in SYSTEM_SCHEMAS or name.startswith("pg_")


def is_system_relation(name: str) -> bool:
    """Relation names PostgreSQL reserves for its catalogs and statistics views."""
    return name.startswith("pg_")
