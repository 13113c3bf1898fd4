"""The OMOP CDM 5.4 + Medical Imaging DDL we ship, and what it declares, read from ``cdm54.sql``.

The SQL file is the single source of truth: the table list, each table's expected columns (used to tell
our own tables from foreign ones before touching a database) and the secondary indexes (dropped and rebuilt
around bulk loads) are all parsed from it, so they can never drift from what ``init-db`` creates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

SCHEMA = "omop"

_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS omop\.(\w+) \($")
_COLUMN = re.compile(r"^(\w+) (bigint|integer|numeric|text|date|timestamp|varchar\(\d+\))( NOT NULL)?,?$")
_INDEX = re.compile(r"^CREATE INDEX IF NOT EXISTS (\w+) ON omop\.(\w+) \(([\w, ]+)\);$")

# How PostgreSQL's format_type() spells the types we write in the DDL.
_CANONICAL = {"timestamp": "timestamp without time zone"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type() reports it, e.g. "character varying(50)"
    not_null: bool


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    create_sql: str


def _canonical_type(sql_type: str) -> str:
    if sql_type.startswith("varchar("):
        return "character varying" + sql_type[len("varchar") :]
    return _CANONICAL.get(sql_type, sql_type)


@cache
def ddl() -> str:
    """The whole DDL script (idempotent: safe to execute on a database that already has it)."""
    return resources.files(__name__).joinpath("cdm54.sql").read_text(encoding="utf-8")


@cache
def table_columns() -> dict[str, tuple[Column, ...]]:
    """Table name -> its columns in declaration order, parsed from the DDL."""
    tables: dict[str, tuple[Column, ...]] = {}
    current: str | None = None
    cols: list[Column] = []
    for raw in ddl().splitlines():
        line = raw.strip()
        if current is None:
            m = _TABLE.match(line)
            if m:
                current, cols = m.group(1), []
            continue
        if line == ");":
            tables[current] = tuple(cols)
            current = None
            continue
        if line.startswith("PRIMARY KEY"):
            continue
        col = _COLUMN.match(line)
        if col is None:
            raise ValueError(f"cdm54.sql: cannot parse column line in table {current}: {line!r}")
        cols.append(Column(col.group(1), _canonical_type(col.group(2)), bool(col.group(3))))
    return tables


@cache
def indexes() -> tuple[Index, ...]:
    """Secondary indexes declared in the DDL (primary keys are part of the tables)."""
    found = []
    for raw in ddl().splitlines():
        m = _INDEX.match(raw.strip())
        if m:
            found.append(Index(m.group(1), m.group(2), raw.strip()))
    return tuple(found)


def table_names() -> tuple[str, ...]:
    """Every table the DDL creates in schema ``omop``, in declaration order."""
    return tuple(table_columns())


TABLES: tuple[str, ...] = table_names()
DDL: str = ddl()

# Tables holding vocabulary and metadata rather than person-level facts.
VOCABULARY_TABLES: tuple[str, ...] = (
    "concept",
    "vocabulary",
    "domain",
    "concept_class",
    "concept_relationship",
    "relationship",
    "concept_synonym",
    "concept_ancestor",
)
METADATA_TABLES: tuple[str, ...] = ("cdm_source",)
CLINICAL_TABLES: tuple[str, ...] = tuple(
    t for t in TABLES if t not in VOCABULARY_TABLES and t not in METADATA_TABLES
)
