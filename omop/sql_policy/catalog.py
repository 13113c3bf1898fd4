"""What the person-local analysis needs to know about the CDM: which tables hold whose data, column types,
and which columns are opaque identifiers.

Everything is derived from the DDL we ship (``omop.schema``), so the validator and ``init-db`` can never
disagree about a table or a column. Three kinds of table may appear in a cohort query:

* **person tables**: every table with a ``person_id`` column. Each row belongs to one person.
* **reference tables**: the OMOP vocabulary. Public data, the same at every trust, usable freely.
* **lookup tables** (``care_site``, ``location``, ``provider``): not person data, but reachable only through
  a person's own row (``p.location_id = l.location_id``), so that each person row meets at most one row.

Any other table (``cdm_source``, ``metadata``, ``fact_relationship``...) is refused: it is neither a
person's own data nor public reference data.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cache

from omop.schema import ddl, table_columns

PERSON_KEY = "person_id"

#: The vocabulary tables: public reference data (the same at every trust), usable without restriction.
REFERENCE_TABLES: frozenset[str] = frozenset(
    {
        "concept",
        "concept_ancestor",
        "concept_relationship",
        "concept_synonym",
        "concept_class",
        "vocabulary",
        "domain",
        "relationship",
        "drug_strength",
    }
)

#: Non-person tables reachable only by their key from a person's row: table -> key column.
LOOKUP_TABLES: dict[str, str] = {
    "care_site": "care_site_id",
    "location": "location_id",
    "provider": "provider_id",
}

#: Identifier columns that do not end in ``_id`` (hospital numbers, DICOM and file references).
_TEXT_IDENTIFIERS = frozenset(
    {"person_source_value", "image_study_uid", "image_series_uid", "wadors_uri", "local_path", "lot_number"}
)


class SqlType(enum.Enum):
    """The value types the analysis distinguishes (PostgreSQL's, folded to what matters for totality)."""

    INT = "integer"
    NUMERIC = "numeric"
    FLOAT = "double precision"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    INTERVAL = "interval"
    BOOL = "boolean"
    UNKNOWN = "unknown"  # an untyped string literal: PostgreSQL coerces it from the context
    NULL = "null"
    OTHER = "other"  # arrays and anything else: usable as a plain output column only


NUMBER_TYPES = frozenset({SqlType.INT, SqlType.NUMERIC, SqlType.FLOAT})


class TableKind(enum.Enum):
    PERSON = "person"
    REFERENCE = "reference"
    LOOKUP = "lookup"


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: SqlType
    identifier: bool  # an opaque record or person identifier
    event: str | None  # for identifiers of person records: the table whose rows it identifies
    reference_key: bool = False  # a vocabulary code column that other tables refer to (concept_id...)


@dataclass(frozen=True)
class CatalogTable:
    name: str
    kind: TableKind
    columns: dict[str, CatalogColumn]
    primary_key: tuple[str, ...] = ()


def _sql_type(declared: str) -> SqlType:
    if declared in ("bigint", "integer", "smallint"):
        return SqlType.INT
    if declared == "numeric":
        return SqlType.NUMERIC
    if declared == "date":
        return SqlType.DATE
    if declared.startswith("timestamp"):
        return SqlType.TIMESTAMP
    if declared == "text" or declared.startswith("character"):
        return SqlType.TEXT
    return SqlType.OTHER


@cache
def event_keys() -> dict[str, str]:
    """Primary-key column name -> person table, for person tables keyed by ``<something>_id``.

    ``visit_occurrence_id`` identifies a visit_occurrence row wherever it appears, so two person rows that
    share it are (in a sound ETL) rows of the same person.
    """
    found: dict[str, str] = {}
    for table, columns in table_columns().items():
        names = [c.name for c in columns]
        if PERSON_KEY in names and names and names[0] != PERSON_KEY and names[0].endswith("_id"):
            found[names[0]] = table
    return found


def _event_of(column: str) -> str | None:
    keys = event_keys()
    if column in keys:
        return keys[column]
    for key, table in keys.items():  # preceding_visit_occurrence_id, parent_visit_detail_id
        if column.endswith("_" + key):
            return table
    return None


def _is_reference_key(column: str) -> bool:
    """Vocabulary columns that identify a concept, vocabulary, domain, class or relationship."""
    return column.endswith(("concept_id", "concept_id_1", "concept_id_2", "_id")) or column == "concept_code"


@cache
def primary_keys() -> dict[str, tuple[str, ...]]:
    """Table -> its primary key columns, as the DDL declares them (unique by the database's own rule)."""
    keys: dict[str, tuple[str, ...]] = {}
    current: str | None = None
    for raw in ddl().splitlines():
        line = raw.strip()
        table = re.match(r"^CREATE TABLE IF NOT EXISTS \w+\.(\w+) \($", line)
        if table:
            current = table.group(1)
            continue
        key = re.match(r"^PRIMARY KEY \(([\w, ]+)\)", line)
        if key and current:
            keys[current] = tuple(part.strip() for part in key.group(1).split(","))
    return keys


def _is_identifier(column: str) -> bool:
    if column == PERSON_KEY or column in _TEXT_IDENTIFIERS:
        return True
    return column.endswith(("_id", "_uid")) and not column.endswith("_concept_id")


@cache
def catalog() -> dict[str, CatalogTable]:
    """Every table a cohort query may name, with its kind and typed columns."""
    tables: dict[str, CatalogTable] = {}
    for table, columns in table_columns().items():
        names = {c.name for c in columns}
        if table in REFERENCE_TABLES:
            kind = TableKind.REFERENCE
        elif table in LOOKUP_TABLES:
            kind = TableKind.LOOKUP
        elif PERSON_KEY in names:
            kind = TableKind.PERSON
        else:
            continue
        cols: dict[str, CatalogColumn] = {}
        for c in columns:
            opaque = kind is not TableKind.REFERENCE and _is_identifier(c.name)
            event = _event_of(c.name) if opaque and kind is TableKind.PERSON else None
            key = kind is TableKind.REFERENCE and _is_reference_key(c.name)
            cols[c.name] = CatalogColumn(c.name, _sql_type(c.type.split("(")[0]), opaque, event, key)
        tables[table] = CatalogTable(table, kind, cols, primary_keys().get(table, ()))
    return tables


def known_table_names() -> frozenset[str]:
    """Names of every table in the DDL (usable or not), to tell "refused" from "does not exist"."""
    return frozenset(table_columns())
