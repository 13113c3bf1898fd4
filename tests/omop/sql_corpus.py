"""SQL corpora for the query policy, importable by later database tests.

``HOSTILE``: (sql, expected reason code, category) — each must be rejected with exactly that code.
``LEGIT``: (name, sql) — OHDSI-style cohort queries that must pass and output a person_id column. Tables
are those of the OMOP CDM (5.3/5.4), so database tests can run them against a loaded CDM.
"""

from __future__ import annotations

P = "SELECT p.person_id FROM omop.person p"  # a minimal valid cohort to wrap hostile fragments around

FLIP_EXAMPLE = (
    "WITH gender_concept AS (SELECT concept_id, concept_name FROM omop.concept WHERE concept_name IN "
    "('Male','Female')), procedure_concept AS (SELECT concept_id, concept_name FROM omop.concept WHERE "
    "domain_id = 'Procedure' AND concept_class_id IN ('Procedure','Clinical Observation') AND "
    "standard_concept = 'S') SELECT p.person_id, p.person_source_value AS \"Patient ID\", "
    'gender_concept.concept_name AS "Gender", io.accession_id, io.image_occurrence_date AS "Image date" '
    "FROM omop.person p LEFT JOIN omop.visit_occurrence v ON v.person_id = p.person_id LEFT JOIN "
    "omop.procedure_occurrence pr ON pr.visit_occurrence_id = v.visit_occurrence_id LEFT JOIN "
    "omop.image_occurrence io ON io.procedure_occurrence_id = pr.procedure_occurrence_id LEFT JOIN "
    "gender_concept ON p.gender_concept_id = gender_concept.concept_id LEFT JOIN procedure_concept ON "
    "pr.procedure_concept_id = procedure_concept.concept_id WHERE procedure_concept.concept_id = 4002001"
)

_SLEEP = "pg_sleep(1)"

HOSTILE: list[tuple[str, str, str]] = [
    # -- size, emptiness, bytes -----------------------------------------------------------------------------
    ("", "empty", "size"),
    ("   \n\t  ", "empty", "size"),
    ("-- just a comment", "empty", "size"),
    ("/* only a comment */", "empty", "size"),
    (";", "empty", "size"),
    (P + " WHERE p.person_source_value = '" + "x" * 11000 + "'", "too_large", "size"),
    (P + " WHERE p.person_source_value = '" + "é" * 5200 + "'", "too_large", "size"),
    (P + "\x00", "nul_byte", "size"),
    ("SELECT p.person_id FROM omop.person p WHERE p.person_source_value = 'a\x00b'", "nul_byte", "size"),
    # -- statement stacking -------------------------------------------------------------------------------
    (P + "; DROP TABLE omop.person", "multiple_statements", "stacking"),
    (P + "; SELECT 1", "multiple_statements", "stacking"),
    (P + ";SELECT pg_sleep(10)", "multiple_statements", "stacking"),
    (P + "; -- trailing comment", "multiple_statements", "stacking"),
    (P + "; /* trailing comment */", "multiple_statements", "stacking"),
    (P + ";;", "multiple_statements", "stacking"),
    ("; " + P, "multiple_statements", "stacking"),
    (P + "\n;\nDELETE FROM omop.person", "multiple_statements", "stacking"),
    # -- comments, quoting and encoding tricks -------------------------------------------------------------
    ('SELECT p.person_id FROM U&"omop".person p', "parse_error", "encoding"),
    ('SELECT p.person_id FROM omop.U&"\\0070erson" p', "parse_error", "encoding"),
    ("SELECT p.person_id, U&'\\0041' AS a FROM omop.person p", "unsupported_syntax", "encoding"),
    ("SELECT p.person_id, E'\\x41' AS a FROM omop.person p", "unsupported_syntax", "encoding"),
    (
        "SELECT p.person_id FROM omop.person p WHERE p.person_source_value = 'unterminated",
        "parse_error",
        "encoding",
    ),
    ("SELECT p.person_id FROM omop.person p /* unterminated comment", "parse_error", "encoding"),
    ("SELECT p.person_id FROM omop.person p WHERE $$a$$ = $b$", "parse_error", "encoding"),
    ("DO $$ BEGIN PERFORM pg_sleep(10); END $$", "not_select", "encoding"),
    ('SELECT p.person_id FROM "pg_catalog"."pg_class" p', "system_catalog", "encoding"),
    ('SELECT p.person_id FROM "OMOP".person p', "forbidden_schema", "encoding"),
    ('SELECT p.person_id FROM "Omop".person p', "forbidden_schema", "encoding"),
    ('SELECT p.person_id FROM "omop ".person p', "forbidden_schema", "encoding"),
    ("SELECT p.person_id FROM omop.person p WHERE p.person_id = $1", "unsupported_syntax", "encoding"),
    ("SELECT p.person_id FROM omop.person p WHERE p.person_id = %s", "unsupported_syntax", "encoding"),
    ("SELECT p.person_id FROM omop.person p WHERE p.person_id = %(x)s", "unsupported_syntax", "encoding"),
    ("SELECT p.person_id FROM omop.person p WHERE p.person_id = ?", "unsupported_syntax", "encoding"),
    ('SELECT "pg_sleep"(1) AS x, p.person_id FROM omop.person p', "forbidden_function", "encoding"),
    # -- writable CTEs and data modification ---------------------------------------------------------------
    (
        "WITH d AS (DELETE FROM omop.person RETURNING person_id) SELECT d.person_id FROM d",
        "data_modifying",
        "writable_cte",
    ),
    (
        "WITH u AS (UPDATE omop.person SET year_of_birth = 1900 RETURNING person_id) "
        "SELECT u.person_id FROM u",
        "data_modifying",
        "writable_cte",
    ),
    (
        "WITH i AS (INSERT INTO omop.person (person_id) VALUES (1) RETURNING person_id) "
        "SELECT i.person_id FROM i",
        "data_modifying",
        "writable_cte",
    ),
    (
        "WITH c AS (SELECT person_id FROM omop.person), "
        "d AS (DELETE FROM omop.observation RETURNING person_id) SELECT c.person_id FROM c",
        "data_modifying",
        "writable_cte",
    ),
    (
        "SELECT p.person_id FROM omop.person p WHERE EXISTS "
        "(WITH d AS (DELETE FROM omop.death RETURNING person_id) SELECT 1 FROM d)",
        "data_modifying",
        "writable_cte",
    ),
    ("WITH c AS (SELECT 1) INSERT INTO omop.person (person_id) SELECT 1 FROM c", "data_modifying", "dml"),
    ("DELETE FROM omop.person", "data_modifying", "dml"),
    ("UPDATE omop.person SET year_of_birth = 1900", "data_modifying", "dml"),
    ("INSERT INTO omop.person (person_id) VALUES (1)", "data_modifying", "dml"),
    (
        "MERGE INTO omop.person t USING omop.death s ON t.person_id = s.person_id WHEN MATCHED THEN DELETE",
        "data_modifying",
        "dml",
    ),
    ("TRUNCATE omop.person", "data_modifying", "dml"),
    ("DROP TABLE omop.person", "data_modifying", "ddl"),
    ("CREATE TABLE omop.x (a int)", "data_modifying", "ddl"),
    ("CREATE TABLE leak AS SELECT person_id FROM omop.person", "data_modifying", "ddl"),
    ("CREATE VIEW v AS SELECT person_id FROM omop.person", "data_modifying", "ddl"),
    ("ALTER TABLE omop.person ADD COLUMN x int", "data_modifying", "ddl"),
    ("GRANT SELECT ON omop.person TO public", "data_modifying", "ddl"),
    ("SELECT p.person_id INTO leak FROM omop.person p", "select_into", "select_into"),
    ("SELECT p.person_id INTO TEMP leak FROM omop.person p", "select_into", "select_into"),
    # -- locking clauses -----------------------------------------------------------------------------------
    (P + " FOR UPDATE", "locking_clause", "locking"),
    (P + " FOR SHARE", "locking_clause", "locking"),
    (P + " FOR NO KEY UPDATE", "locking_clause", "locking"),
    (P + " FOR KEY SHARE", "locking_clause", "locking"),
    (P + " FOR UPDATE NOWAIT", "locking_clause", "locking"),
    ("SELECT s.person_id FROM (SELECT person_id FROM omop.person FOR UPDATE) s", "locking_clause", "locking"),
    # -- utility statements -------------------------------------------------------------------------------
    ("COPY omop.person TO STDOUT", "not_select", "utility"),
    ("COPY (SELECT person_id FROM omop.person) TO '/tmp/x'", "not_select", "utility"),
    ("EXPLAIN " + P, "not_select", "utility"),
    ("EXPLAIN ANALYZE " + P, "not_select", "utility"),
    ("SET search_path = pg_catalog", "not_select", "utility"),
    ("SET ROLE postgres", "not_select", "utility"),
    ("RESET ALL", "not_select", "utility"),
    ("CALL do_something()", "not_select", "utility"),
    ("VACUUM omop.person", "not_select", "utility"),
    ("ANALYZE omop.person", "not_select", "utility"),
    ("LISTEN channel", "not_select", "utility"),
    ("NOTIFY channel", "not_select", "utility"),
    ("SHOW ALL", "not_select", "utility"),
    ("BEGIN", "not_select", "utility"),
    ("COMMIT", "not_select", "utility"),
    ("PREPARE q AS " + P, "not_select", "utility"),
    ("EXECUTE q", "not_select", "utility"),
    ("LOCK TABLE omop.person", "not_select", "utility"),
    ("LOAD 'plpgsql'", "not_select", "utility"),
    ("VALUES (1)", "not_select", "utility"),
    # -- system catalogs, qualified and unqualified -------------------------------------------------------
    ("SELECT person_id FROM pg_class", "system_catalog", "catalog"),
    ("SELECT person_id FROM PG_CLASS", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_catalog.pg_class", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_authid", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_shadow", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_stat_activity", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_user", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_roles", "system_catalog", "catalog"),
    ("SELECT person_id FROM information_schema.tables", "system_catalog", "catalog"),
    ("SELECT person_id FROM INFORMATION_SCHEMA.columns", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_toast.pg_toast_1", "system_catalog", "catalog"),
    ("SELECT person_id FROM pg_temp.t", "system_catalog", "catalog"),
    ("SELECT person_id FROM omop.pg_class", "system_catalog", "catalog"),
    (P + " WHERE EXISTS (SELECT 1 FROM pg_shadow)", "system_catalog", "catalog"),
    (P + " JOIN pg_catalog.pg_roles r ON true", "system_catalog", "catalog"),
    ("WITH c AS (SELECT usename FROM pg_user) " + P, "system_catalog", "catalog"),
    (
        "WITH pg_class AS (SELECT person_id FROM omop.person) SELECT person_id FROM pg_class",
        "system_catalog",
        "catalog",
    ),
    (P + " WHERE p.person_id IN (SELECT oid FROM pg_catalog.pg_proc)", "system_catalog", "catalog"),
    ("SELECT pg_catalog.pg_class.relname AS r, p.person_id FROM omop.person p", "system_catalog", "catalog"),
    # -- schema and catalog (database) tricks --------------------------------------------------------------
    ("SELECT person_id FROM public.person", "forbidden_schema", "schema"),
    ("SELECT person_id FROM omop_staging.person", "forbidden_schema", "schema"),
    ("SELECT person_id FROM cdm.person", "forbidden_schema", "schema"),
    ("SELECT person_id FROM otherdb.omop.person", "forbidden_schema", "schema"),
    ("SELECT person_id FROM otherdb..person", "forbidden_schema", "schema"),
    (P + " JOIN public.secrets s ON s.person_id = p.person_id", "forbidden_schema", "schema"),
    ("SELECT c.person_id FROM (SELECT person_id FROM audit.log) c", "forbidden_schema", "schema"),
    (
        "WITH c AS (SELECT person_id FROM public.person) SELECT c.person_id FROM c",
        "forbidden_schema",
        "schema",
    ),
    ("SELECT public.person.person_id FROM omop.person", "forbidden_schema", "schema"),
    ("SELECT x.omop.person.person_id FROM omop.person", "forbidden_schema", "schema"),
    # -- dangerous functions anywhere in the tree ----------------------------------------------------------
    (f"SELECT p.person_id, {_SLEEP} AS s FROM omop.person p", "forbidden_function", "function_select"),
    (
        f"SELECT p.person_id FROM omop.person p WHERE {_SLEEP} IS NOT NULL",
        "forbidden_function",
        "function_where",
    ),
    (
        f"SELECT p.person_id FROM omop.person p JOIN omop.death d ON {_SLEEP} IS NULL",
        "forbidden_function",
        "function_join",
    ),
    (
        f"SELECT p.person_id FROM omop.person p GROUP BY p.person_id, {_SLEEP}",
        "forbidden_function",
        "function_group",
    ),
    (
        f"SELECT p.person_id FROM omop.person p GROUP BY p.person_id HAVING count({_SLEEP}) > 0",
        "forbidden_function",
        "function_having",
    ),
    (f"SELECT p.person_id FROM omop.person p ORDER BY {_SLEEP}", "forbidden_function", "function_order"),
    (
        f"SELECT p.person_id, row_number() OVER (PARTITION BY {_SLEEP}) AS r FROM omop.person p",
        "forbidden_function",
        "function_window",
    ),
    (
        f"SELECT p.person_id, rank() OVER (ORDER BY {_SLEEP}) AS r FROM omop.person p",
        "forbidden_function",
        "function_window",
    ),
    (
        f"SELECT p.person_id, count(*) FILTER (WHERE {_SLEEP} IS NULL) OVER () AS n FROM omop.person p",
        "forbidden_function",
        "function_window",
    ),
    (
        f"WITH c AS (SELECT person_id, {_SLEEP} AS s FROM omop.person) SELECT c.person_id FROM c",
        "forbidden_function",
        "function_cte",
    ),
    (
        f"SELECT s.person_id FROM (SELECT person_id FROM omop.person WHERE {_SLEEP} IS NULL) s",
        "forbidden_function",
        "function_subquery",
    ),
    (
        f"SELECT p.person_id FROM omop.person p WHERE p.person_id IN (SELECT {_SLEEP})",
        "forbidden_function",
        "function_subquery",
    ),
    (
        f"SELECT p.person_id FROM omop.person p WHERE EXISTS (SELECT {_SLEEP})",
        "forbidden_function",
        "function_subquery",
    ),
    (
        f"SELECT p.person_id, (SELECT {_SLEEP}) AS s FROM omop.person p",
        "forbidden_function",
        "function_subquery",
    ),
    (
        f"SELECT p.person_id, CASE WHEN p.person_id > 0 THEN {_SLEEP} END AS s FROM omop.person p",
        "forbidden_function",
        "function_case",
    ),
    (
        f"SELECT p.person_id, coalesce({_SLEEP}, NULL) AS s FROM omop.person p",
        "forbidden_function",
        "function_nested",
    ),
    (
        f"SELECT p.person_id, count({_SLEEP}) AS n FROM omop.person p GROUP BY p.person_id",
        "forbidden_function",
        "function_nested",
    ),
    (f"SELECT p.person_id, {_SLEEP}::text AS s FROM omop.person p", "forbidden_function", "function_cast"),
    (f"SELECT p.person_id FROM omop.person p, {_SLEEP} s", "forbidden_function", "function_from"),
    (
        f"SELECT p.person_id FROM omop.person p CROSS JOIN LATERAL {_SLEEP} s",
        "forbidden_function",
        "function_lateral",
    ),
    (
        f"SELECT p.person_id FROM omop.person p, LATERAL (SELECT {_SLEEP}) s",
        "forbidden_function",
        "function_lateral",
    ),
    (
        "SELECT p.person_id FROM omop.person p, ROWS FROM (generate_series(1, 2), pg_sleep(1)) AS r(a, b)",
        "generated_rows",
        "function_rows_from",
    ),
    (
        "SELECT p.person_id FROM omop.person p CROSS JOIN dblink('host=x', 'select 1') AS t(a int)",
        "forbidden_function",
        "function_from",
    ),
    (
        "SELECT p.person_id, dblink_exec('host=x', 'drop table x') AS d FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, lo_import('/etc/passwd') AS l FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, lo_export(1, '/tmp/x') AS l FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, query_to_xml('select * from pg_authid', true, true, '') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, set_config('role', 'postgres', false) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, current_setting('data_directory') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    ("SELECT p.person_id, txid_current() AS x FROM omop.person p", "forbidden_function", "function_select"),
    ("SELECT p.person_id, version() AS x FROM omop.person p", "forbidden_function", "function_select"),
    (
        "SELECT p.person_id, pg_read_file('/etc/passwd') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    ("SELECT p.person_id, pg_ls_dir('.') AS x FROM omop.person p", "forbidden_function", "function_select"),
    (
        "SELECT p.person_id, pg_terminate_backend(1) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    ("SELECT p.person_id, current_user AS x FROM omop.person p", "forbidden_function", "function_select"),
    ("SELECT p.person_id, session_user AS x FROM omop.person p", "forbidden_function", "function_select"),
    (
        "SELECT p.person_id, current_database() AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    ("SELECT p.person_id, current_schema AS x FROM omop.person p", "forbidden_function", "function_select"),
    ("SELECT p.person_id, user AS x FROM omop.person p", "forbidden_function", "function_keyword"),
    ("SELECT p.person_id, USER AS x FROM omop.person p", "forbidden_function", "function_keyword"),
    ("SELECT p.person_id, current_role AS x FROM omop.person p", "forbidden_function", "function_keyword"),
    ("SELECT p.person_id, system_user AS x FROM omop.person p", "forbidden_function", "function_keyword"),
    (
        "SELECT p.person_id FROM omop.person p WHERE user = 'postgres'",
        "forbidden_function",
        "function_keyword",
    ),
    ("SELECT p.person_id, localtime AS x FROM omop.person p", "forbidden_function", "function_keyword"),
    ("SELECT p.person_id, regclass('pg_authid') AS x FROM omop.person p", "forbidden_function", "cast"),
    (
        "SELECT p.person_id, nextval('omop.seq') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, setval('omop.seq', 1) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, inet_server_addr() AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    ("SELECT p.person_id, random() AS x FROM omop.person p", "forbidden_function", "function_select"),
    (
        "SELECT p.person_id, md5(p.person_source_value) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, has_table_privilege('pg_authid', 'select') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, to_regclass('pg_authid') AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, pg_catalog.pg_sleep(1) AS x FROM omop.person p",
        "forbidden_function",
        "function_qualified",
    ),
    (
        "SELECT p.person_id, pg_catalog.upper('a') AS x FROM omop.person p",
        "forbidden_function",
        "function_qualified",
    ),
    ("SELECT p.person_id, public.f() AS x FROM omop.person p", "forbidden_function", "function_qualified"),
    ("SELECT p.person_id, omop.f() AS x FROM omop.person p", "forbidden_function", "function_qualified"),
    (
        "SELECT p.person_id FROM omop.person p, pg_catalog.generate_series(1, 2) g",
        "forbidden_function",
        "function_qualified",
    ),
    (
        "SELECT p.person_id FROM omop.person p CROSS JOIN LATERAL pg_catalog.generate_series(1, 2) g",
        "forbidden_function",
        "function_qualified",
    ),
    (
        "SELECT p.person_id, IF(p.person_id > 0, 1, 0) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    (
        "SELECT p.person_id, datediff(p.birth_datetime, p.birth_datetime) AS x FROM omop.person p",
        "forbidden_function",
        "function_select",
    ),
    # -- casts to name-resolving or unknown types ----------------------------------------------------------
    ("SELECT p.person_id, 'pg_authid'::regclass AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, CAST('pg_sleep' AS regproc) AS x FROM omop.person p", "forbidden_type", "cast"),
    (
        "SELECT p.person_id, 'pg_sleep(float8)'::regprocedure AS x FROM omop.person p",
        "forbidden_type",
        "cast",
    ),
    ("SELECT p.person_id, 'postgres'::regrole AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, 'pg_catalog'::regnamespace AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, 'int4'::regtype AS x FROM omop.person p", "forbidden_type", "cast"),
    (
        "SELECT p.person_id FROM omop.person p WHERE p.person_id = 'pg_authid'::regclass::oid",
        "forbidden_type",
        "cast",
    ),
    ("SELECT p.person_id, 'x'::my_type AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, '<a/>'::xml AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, '{}'::json AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, 'x'::pg_catalog.regclass AS x FROM omop.person p", "forbidden_type", "cast"),
    ("SELECT p.person_id, 'x'::\"regclass\" AS x FROM omop.person p", "forbidden_type", "cast"),
    # -- blind extraction through LIMIT/OFFSET/FETCH -------------------------------------------------------
    (P + " LIMIT (SELECT count(*) FROM omop.person)", "non_literal_limit", "limit"),
    (
        P + " LIMIT CASE WHEN (SELECT count(*) FROM omop.death) > 5 THEN 1 ELSE 0 END",
        "non_literal_limit",
        "limit",
    ),
    (P + " OFFSET (SELECT min(year_of_birth) FROM omop.person)", "non_literal_limit", "limit"),
    (P + " LIMIT 1 + 1", "non_literal_limit", "limit"),
    (P + " LIMIT -1", "non_literal_limit", "limit"),
    (P + " LIMIT '5'", "non_literal_limit", "limit"),
    (P + " LIMIT 1.5", "non_literal_limit", "limit"),
    (P + " LIMIT NULL", "non_literal_limit", "limit"),
    (P + " LIMIT ALL", "non_literal_limit", "limit"),
    (P + " OFFSET -3", "non_literal_limit", "limit"),
    (P + " FETCH FIRST (SELECT 1) ROWS ONLY", "non_literal_limit", "limit"),
    (
        "SELECT s.person_id FROM (SELECT person_id FROM omop.person LIMIT (SELECT 3)) s",
        "non_literal_limit",
        "limit",
    ),
    (
        "WITH c AS (SELECT person_id FROM omop.person OFFSET (SELECT 1)) SELECT c.person_id FROM c",
        "non_literal_limit",
        "limit",
    ),
    # -- generate_series bounds -----------------------------------------------------------------------------
    (
        "SELECT p.person_id FROM omop.person p, generate_series(1, 100000000) g",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id FROM omop.person p, generate_series(1, p.year_of_birth) g",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id, generate_series(1, 10, 0) AS g FROM omop.person p",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id, generate_series(1, (SELECT max(person_id) FROM omop.person)) AS g "
        "FROM omop.person p",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id FROM omop.person p, generate_series(DATE '2000-01-01', DATE '2001-01-01') g",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id FROM omop.person p, "
        "generate_series(DATE '0001-01-01', DATE '9999-01-01', INTERVAL '1 minute') g",
        "generated_rows",
        "generated_rows",
    ),
    (
        "SELECT p.person_id FROM omop.person p, "
        "generate_series(current_date, current_date, INTERVAL '1 day') g",
        "generated_rows",
        "generated_rows",
    ),
    # -- the cohort must output person_id ------------------------------------------------------------------
    ("SELECT count(*) FROM omop.person", "no_person_id", "person_id"),
    ("SELECT count(*) AS n FROM omop.person", "no_person_id", "person_id"),
    ("SELECT * FROM omop.person", "no_person_id", "person_id"),
    ("TABLE omop.person", "no_person_id", "person_id"),
    ("SELECT p.* FROM omop.person p", "no_person_id", "person_id"),
    ("SELECT year_of_birth FROM omop.person", "no_person_id", "person_id"),
    ('SELECT "PERSON_ID" FROM omop.person', "no_person_id", "person_id"),
    ("SELECT p.person_id AS pid FROM omop.person p", "no_person_id", "person_id"),
    ("SELECT person_id, person_id FROM omop.person", "duplicate_column", "person_id"),
    (
        "SELECT p.person_id, o.person_id FROM omop.person p JOIN omop.observation o USING (person_id)",
        "duplicate_column",
        "person_id",
    ),
    (
        "SELECT p.person_id, p.year_of_birth, p.year_of_birth FROM omop.person p",
        "duplicate_column",
        "person_id",
    ),
    ("SELECT p.person_id, p.year_of_birth + 1 FROM omop.person p", "unnamed_column", "person_id"),
    ("SELECT p.person_id, count(*) FROM omop.person p GROUP BY p.person_id", "unnamed_column", "person_id"),
    # -- person_id must hold person ids -------------------------------------------------------------------
    ("SELECT m.measurement_id AS person_id FROM omop.measurement m", "person_id_lineage", "lineage"),
    ("SELECT 1 AS person_id FROM omop.person", "person_id_lineage", "lineage"),
    ("SELECT p.person_id + 0 AS person_id FROM omop.person p", "person_id_lineage", "lineage"),
    ("SELECT NULL AS person_id FROM omop.person", "person_id_lineage", "lineage"),
    (
        "SELECT c.person_id FROM (SELECT measurement_id AS person_id FROM omop.measurement) c",
        "person_id_lineage",
        "lineage",
    ),
    (
        "WITH c AS (SELECT condition_occurrence_id AS person_id FROM omop.condition_occurrence) "
        "SELECT c.person_id FROM c",
        "person_id_lineage",
        "lineage",
    ),
    (
        "WITH c(person_id) AS (SELECT measurement_id FROM omop.measurement) SELECT c.person_id FROM c",
        "person_id_lineage",
        "lineage",
    ),
    (
        "SELECT t.person_id FROM (SELECT measurement_id FROM omop.measurement) AS t(person_id)",
        "person_id_lineage",
        "lineage",
    ),
    ("SELECT v.person_id FROM (VALUES (1), (2)) AS v(person_id)", "person_id_lineage", "lineage"),
    ("SELECT person_id FROM generate_series(1, 100) AS person_id", "generated_rows", "lineage"),
    ("SELECT g.person_id FROM generate_series(1, 100) AS g(person_id)", "generated_rows", "lineage"),
    ("WITH person_id AS (SELECT 1 AS x) SELECT person_id FROM person_id", "person_id_lineage", "lineage"),
    ("SELECT person_id FROM omop.measurement AS person_id", "person_id_lineage", "lineage"),
    (
        "SELECT person_id FROM omop.person UNION SELECT measurement_id FROM omop.measurement",
        "person_id_lineage",
        "lineage",
    ),
    (
        "SELECT person_id, year_of_birth FROM omop.person UNION ALL "
        "SELECT year_of_birth, person_id FROM omop.person",
        "person_id_lineage",
        "lineage",
    ),
    ("SELECT person_id FROM omop.person UNION SELECT 42", "person_id_lineage", "lineage"),
    ("SELECT person_id FROM omop.person UNION VALUES (42)", "person_id_lineage", "lineage"),
    ("SELECT * FROM omop.person UNION SELECT * FROM omop.measurement", "person_id_lineage", "lineage"),
    (
        "WITH c AS (SELECT person_id FROM omop.person UNION ALL SELECT visit_occurrence_id FROM "
        "omop.visit_occurrence) SELECT c.person_id FROM c",
        "person_id_lineage",
        "lineage",
    ),
    (
        "WITH RECURSIVE r AS (SELECT person_id FROM omop.person UNION ALL SELECT r.person_id + 1 FROM r "
        "WHERE r.person_id < 10) SELECT r.person_id FROM r",
        "person_id_lineage",
        "lineage",
    ),
    (
        "SELECT CASE WHEN true THEN p.person_id ELSE p.year_of_birth END AS person_id FROM omop.person p",
        "person_id_lineage",
        "lineage",
    ),
    # -- other syntax the validator does not support ---------------------------------------------------------
    ("SELECT p.person_id FROM omop.person p TABLESAMPLE SYSTEM (1)", "unsupported_syntax", "syntax"),
    ("SELECT p.person_id, (p.x).f AS f FROM omop.person p", "unsupported_syntax", "syntax"),
    (
        "SELECT p.person_id, 1 OPERATOR(pg_catalog.+) 2 AS x FROM omop.person p",
        "unsupported_syntax",
        "syntax",
    ),
    ("SELECT p.person_id, p.person_id & 1 AS x FROM omop.person p", "unsupported_syntax", "syntax"),
    ("SELECT p.person_id, p.x -> 'a' AS x FROM omop.person p", "forbidden_function", "syntax"),
    (
        "SELECT person_id FROM omop.person UNION WITH person AS (SELECT 1 AS x) SELECT person_id FROM person",
        "unsupported_syntax",
        "syntax",
    ),
    # -- parse errors -------------------------------------------------------------------------------------
    ("SELEC person_id FROM omop.person", "parse_error", "parse"),
    ("SELECT person_id FROM", "parse_error", "parse"),
    ("SELECT (((person_id FROM omop.person", "parse_error", "parse"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " AS person_id", "parse_error", "parse"),
]


# Queries that were legitimate before the person-local language, with why they are refused now.
MOVED_FROM_LEGIT: list[tuple[str, str, str]] = [
    (
        "SELECT p.person_id, substring(p.person_source_value FROM 1 FOR 3) AS prefix FROM omop.person p",
        "opaque_identifier",
        "moved_from_legit",
    ),
    (
        "SELECT m.person_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY m.value_as_number) AS median "
        "FROM omop.measurement m GROUP BY m.person_id",
        "error_prone_function",
        "moved_from_legit",
    ),
    (
        "SELECT v.person_id, ntile(4) OVER (ORDER BY v.visit_start_date) AS quartile "
        "FROM omop.visit_occurrence v",
        "cross_person_window",
        "moved_from_legit",
    ),
    (
        "SELECT p.person_id, make_date(p.year_of_birth, 1, 1) AS born FROM omop.person p",
        "error_prone_function",
        "moved_from_legit",
    ),
    (
        "WITH RECURSIVE anc(concept_id, depth) AS (SELECT 192671, 0 UNION ALL "
        "SELECT cr.concept_id_2, anc.depth + 1 FROM anc JOIN omop.concept_relationship cr "
        "ON cr.concept_id_1 = anc.concept_id AND cr.relationship_id = 'Subsumes' WHERE anc.depth < 5) "
        "SELECT DISTINCT co.person_id FROM omop.condition_occurrence co "
        "JOIN anc ON anc.concept_id = co.condition_concept_id",
        "recursive_query",
        "moved_from_legit",
    ),
    (
        "SELECT v.person_id, m.month AS month FROM omop.visit_occurrence v JOIN "
        "generate_series(DATE '2010-01-01', DATE '2020-12-01', INTERVAL '1 month') AS m(month) "
        "ON date_trunc('month', v.visit_start_date) = m.month",
        "generated_rows",
        "moved_from_legit",
    ),
    (
        "SELECT p.person_id, CAST(p.month_of_birth AS numeric(4, 1)) AS m FROM omop.person p",
        "unsafe_cast",
        "moved_from_legit",
    ),
    (
        "SELECT m.person_id, sqrt(abs(sum(m.value_as_number))) AS s FROM omop.measurement m "
        "GROUP BY m.person_id",
        "error_prone_function",
        "moved_from_legit",
    ),
    (
        "SELECT m.person_id, ln(1 + abs(max(m.value_as_number))) AS l FROM omop.measurement m "
        "GROUP BY m.person_id",
        "error_prone_function",
        "moved_from_legit",
    ),
    (
        "SELECT person_id FROM omop.person ORDER BY person_id LIMIT 100 OFFSET 10",
        "cross_person_row_choice",
        "moved_from_legit",
    ),
    (
        "SELECT person_id FROM omop.person ORDER BY person_id FETCH FIRST 50 ROWS ONLY",
        "cross_person_row_choice",
        "moved_from_legit",
    ),
    (
        "SELECT s.person_id FROM (SELECT person_id, count(*) AS n FROM omop.visit_occurrence "
        "GROUP BY ROLLUP (person_id)) s WHERE s.person_id IS NOT NULL",
        "cross_person_aggregate",
        "moved_from_legit",
    ),
    (
        "SELECT p.person_id FROM omop.person p WHERE p.gender_source_value SIMILAR TO '[0-9]+'",
        "error_prone_function",
        "moved_from_legit",
    ),
    (
        "SELECT p.person_id, g.label FROM omop.person p "
        "JOIN (VALUES (8507, 'M'), (8532, 'F')) AS g(cid, label) ON g.cid = p.gender_concept_id",
        "generated_rows",
        "moved_from_legit",
    ),
]
HOSTILE += MOVED_FROM_LEGIT

LEGIT: list[tuple[str, str]] = [
    ("flip_worked_example", FLIP_EXAMPLE),
    ("minimal", "SELECT person_id FROM omop.person"),
    (
        "unqualified_tables_are_pinned",
        "SELECT p.person_id FROM person p JOIN observation o ON o.person_id = p.person_id",
    ),
    ("uppercase_schema_folds", "SELECT p.person_id FROM OMOP.PERSON p"),
    ("quoted_lowercase_schema", 'SELECT p.person_id FROM "omop"."person" p'),
    ("trailing_semicolon", "SELECT person_id FROM omop.person;"),
    ("trailing_semicolon_whitespace", "SELECT person_id FROM omop.person ;  \n"),
    ("comments_are_stripped", "-- cohort\nSELECT /* the id */ person_id FROM omop.person -- end"),
    ("nested_block_comment", "SELECT person_id /* outer /* inner */ still comment */ FROM omop.person"),
    ("semicolon_inside_string", "SELECT person_id FROM omop.person WHERE gender_source_value <> 'a;b'"),
    ("dollar_quoted_string", "SELECT person_id FROM omop.person WHERE gender_source_value <> $$it's; x$$"),
    ("tagged_dollar_quote", "SELECT person_id FROM omop.person WHERE gender_source_value <> $q$a$q$"),
    (
        "gi_bleed_concept_ancestor",
        "WITH gi AS (SELECT ca.descendant_concept_id AS concept_id FROM omop.concept_ancestor ca "
        "WHERE ca.ancestor_concept_id = 192671) "
        "SELECT DISTINCT co.person_id FROM omop.condition_occurrence co "
        "JOIN gi ON gi.concept_id = co.condition_concept_id",
    ),
    (
        "first_exposure_window",
        "WITH exposures AS (SELECT de.person_id, de.drug_exposure_start_date, "
        "row_number() OVER (PARTITION BY de.person_id ORDER BY de.drug_exposure_start_date) AS rn "
        "FROM omop.drug_exposure de JOIN omop.concept_ancestor ca ON ca.descendant_concept_id = "
        "de.drug_concept_id WHERE ca.ancestor_concept_id IN (1118084, 1124300)) "
        "SELECT e.person_id, e.drug_exposure_start_date AS index_date FROM exposures e WHERE e.rn = 1",
    ),
    (
        "observation_period_prior_365",
        "SELECT co.person_id, min(co.condition_start_date) AS index_date FROM omop.condition_occurrence co "
        "JOIN omop.observation_period op ON op.person_id = co.person_id "
        "AND co.condition_start_date >= op.observation_period_start_date + INTERVAL '365 days' "
        "AND co.condition_start_date <= op.observation_period_end_date "
        "WHERE co.condition_concept_id = 192671 GROUP BY co.person_id",
    ),
    (
        "age_at_index_and_gender",
        "SELECT p.person_id, EXTRACT(YEAR FROM age(v.visit_start_date, p.birth_datetime)) AS age_years, "
        "CASE p.gender_concept_id WHEN 8507 THEN 'male' WHEN 8532 THEN 'female' ELSE 'other' END AS gender "
        "FROM omop.person p JOIN omop.visit_occurrence v ON v.person_id = p.person_id",
    ),
    (
        "date_part_and_year_arithmetic",
        "SELECT p.person_id, date_part('year', current_date) - p.year_of_birth AS approx_age "
        "FROM omop.person p WHERE p.year_of_birth BETWEEN 1930 AND 2000",
    ),
    (
        "union_of_two_sources",
        "SELECT co.person_id FROM omop.condition_occurrence co WHERE co.condition_concept_id = 192671 "
        "UNION SELECT o.person_id FROM omop.observation o WHERE o.observation_concept_id = 192671",
    ),
    (
        "except_exclusion",
        "SELECT de.person_id FROM omop.drug_exposure de WHERE de.drug_concept_id = 1118084 "
        "EXCEPT SELECT d.person_id FROM omop.death d",
    ),
    (
        "intersect_both",
        "SELECT person_id FROM omop.condition_occurrence INTERSECT SELECT person_id FROM omop.drug_exposure",
    ),
    (
        "union_all_with_columns_aligned",
        "SELECT co.person_id, co.condition_concept_id AS concept_id FROM omop.condition_occurrence co "
        "UNION ALL SELECT o.person_id, o.observation_concept_id FROM omop.observation o",
    ),
    (
        "exists_and_not_exists",
        "SELECT p.person_id FROM omop.person p WHERE EXISTS (SELECT 1 FROM omop.condition_occurrence co "
        "WHERE co.person_id = p.person_id AND co.condition_concept_id = 192671) AND NOT EXISTS "
        "(SELECT 1 FROM omop.death d WHERE d.person_id = p.person_id)",
    ),
    (
        "coalesce_nullif_greatest",
        "SELECT v.person_id, coalesce(v.visit_end_date, v.visit_start_date) AS end_date, "
        "nullif(v.visit_source_value, '') AS src, greatest(v.visit_start_date, DATE '2010-01-01') AS s "
        "FROM omop.visit_occurrence v",
    ),
    (
        "ilike_and_concept_names",
        "SELECT co.person_id, c.concept_name FROM omop.condition_occurrence co JOIN omop.concept c "
        "ON c.concept_id = co.condition_concept_id WHERE c.concept_name ILIKE '%bleed%' "
        "AND c.vocabulary_id LIKE 'SNOMED%' AND c.domain_id NOT ILIKE 'drug'",
    ),
    (
        "substring_and_strings",
        "SELECT p.person_id, substring(p.race_source_value FROM 1 FOR 3) AS prefix, "
        "upper(trim(p.gender_source_value)) AS g, length(p.race_source_value) AS len, "
        "lower(concat(p.race_source_value, '-', p.ethnicity_source_value)) AS re, "
        "split_part(p.race_source_value, '-', 1) AS part, lpad(p.year_of_birth::text, 6, '0') AS y, "
        "left(p.race_source_value, 2) AS l, replace(p.race_source_value, '-', '') AS r, "
        "strpos(p.race_source_value, '-') AS pos, concat_ws('/', p.year_of_birth, p.month_of_birth) AS ym "
        "FROM omop.person p",
    ),
    (
        "aggregates_per_person",
        "SELECT m.person_id, count(*) AS n, avg(m.value_as_number) AS mean, min(m.value_as_number) AS lo, "
        "max(m.value_as_number) AS hi, stddev(m.value_as_number) AS sd, sum(m.value_as_number) AS total, "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY m.value_as_number) AS median, "
        "bool_or(m.value_as_number > 100) AS any_high, string_agg(m.unit_source_value, ',') AS units "
        "FROM omop.measurement m WHERE m.measurement_concept_id = 3004249 GROUP BY m.person_id "
        "HAVING count(*) >= 2",
    ),
    (
        "window_lag_lead",
        "SELECT v.person_id, v.visit_start_date, "
        "lag(v.visit_start_date) OVER w AS prev_visit, lead(v.visit_start_date) OVER w AS next_visit, "
        "first_value(v.visit_start_date) OVER w AS first_visit, dense_rank() OVER w AS k, "
        "ntile(4) OVER (PARTITION BY v.person_id ORDER BY v.visit_start_date) AS quartile "
        "FROM omop.visit_occurrence v WINDOW w AS (PARTITION BY v.person_id ORDER BY v.visit_start_date)",
    ),
    (
        "window_frame",
        "SELECT d.person_id, sum(d.quantity) OVER (PARTITION BY d.person_id ORDER BY "
        "d.drug_exposure_start_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cumulative "
        "FROM omop.drug_exposure d",
    ),
    (
        "date_trunc_and_to_char",
        "SELECT v.person_id, date_trunc('month', v.visit_start_date) AS month, "
        "to_char(v.visit_start_date, 'YYYY-MM') AS ym, p.year_of_birth - 1 AS year_before "
        "FROM omop.visit_occurrence v JOIN omop.person p ON p.person_id = v.person_id",
    ),
    (
        "date_arithmetic",
        "SELECT co.person_id FROM omop.condition_occurrence co JOIN omop.drug_exposure de "
        "ON de.person_id = co.person_id WHERE de.drug_exposure_start_date BETWEEN "
        "co.condition_start_date - 30 AND co.condition_start_date + INTERVAL '30 days' "
        "AND co.condition_start_date >= DATE '2000-01-01' AND co.condition_start_date < now()",
    ),
    (
        "distinct_on_latest",
        "SELECT DISTINCT ON (m.person_id) m.person_id, m.value_as_number AS latest "
        "FROM omop.measurement m ORDER BY m.person_id, m.measurement_date DESC NULLS LAST",
    ),
    (
        "cte_star_select",
        "WITH cohort AS (SELECT DISTINCT person_id FROM omop.condition_occurrence "
        "WHERE condition_concept_id = 192671) SELECT * FROM cohort",
    ),
    (
        "cte_chain_star",
        "WITH a AS (SELECT person_id, year_of_birth FROM omop.person), b AS (SELECT * FROM a "
        "WHERE year_of_birth > 1950) SELECT b.* FROM b",
    ),
    (
        "cte_shadowing_table_name",
        "WITH person AS (SELECT person_id FROM omop.person WHERE year_of_birth > 1960) "
        "SELECT person.person_id FROM person",
    ),
    (
        "nested_cte_in_subquery",
        "SELECT s.person_id FROM (WITH x AS (SELECT person_id FROM omop.death) SELECT x.person_id FROM x) s",
    ),
    (
        "ancestors_through_concept_ancestor",
        "WITH anc AS (SELECT ca.descendant_concept_id AS concept_id FROM omop.concept_ancestor ca "
        "WHERE ca.ancestor_concept_id = 192671 AND ca.max_levels_of_separation <= 5) "
        "SELECT DISTINCT co.person_id FROM omop.condition_occurrence co "
        "JOIN anc ON anc.concept_id = co.condition_concept_id",
    ),
    (
        "lateral_subquery",
        "SELECT p.person_id, lastv.visit_start_date AS last_visit FROM omop.person p "
        "CROSS JOIN LATERAL (SELECT v.visit_start_date FROM omop.visit_occurrence v "
        "WHERE v.person_id = p.person_id ORDER BY v.visit_start_date DESC LIMIT 1) lastv",
    ),
    (
        "calendar_month_without_series",
        "SELECT v.person_id, date_trunc('month', v.visit_start_date) AS month FROM omop.visit_occurrence v "
        "WHERE v.visit_start_date BETWEEN DATE '2010-01-01' AND DATE '2020-12-31'",
    ),
    (
        "decade_without_series",
        "SELECT p.person_id, p.year_of_birth / 10 * 10 AS decade FROM omop.person p",
    ),
    (
        "in_list_and_any_array",
        "SELECT co.person_id FROM omop.condition_occurrence co WHERE co.condition_concept_id IN "
        "(192671, 4112343) OR co.condition_concept_id = ANY(ARRAY[28060, 4280942])",
    ),
    (
        "casts",
        "SELECT p.person_id, p.year_of_birth::text AS yob_text, "
        "CAST(p.month_of_birth AS numeric) AS m, "
        "p.birth_datetime::date AS bd, '2000-01-01'::timestamp AS t0 FROM omop.person p",
    ),
    (
        "math_functions",
        "SELECT m.person_id, round(avg(m.value_as_number), 2) AS mean, abs(min(m.value_as_number)) AS a, "
        "floor(max(m.value_as_number)) AS f, ceil(max(m.value_as_number)) AS c, "
        "sign(sum(m.value_as_number)) AS s, trunc(avg(m.value_as_number), 1) AS t, "
        "max(m.value_as_number) / min(m.value_as_number) AS ratio, mod(count(*), 2) AS parity, "
        "count(*) % 3 AS m3 "
        "FROM omop.measurement m GROUP BY m.person_id",
    ),
    (
        "limit_inside_correlated_lateral",
        "SELECT p.person_id, v2.visit_start_date AS second_visit FROM omop.person p CROSS JOIN LATERAL "
        "(SELECT v.visit_start_date FROM omop.visit_occurrence v WHERE v.person_id = p.person_id "
        "ORDER BY v.visit_start_date OFFSET 1 FETCH FIRST 1 ROWS ONLY) v2",
    ),
    ("order_by_without_limit", "SELECT person_id FROM omop.person ORDER BY person_id"),
    (
        "quoted_output_names",
        'SELECT p.person_id, p.year_of_birth AS "Year of birth", p.gender_concept_id AS "Gender" '
        "FROM omop.person p",
    ),
    (
        "person_id_cast_and_alias",
        "SELECT c.person_id FROM (SELECT co.person_id::bigint AS person_id FROM "
        "omop.condition_occurrence co) c",
    ),
    (
        "join_using_person_id",
        "SELECT person_id, p.year_of_birth FROM omop.person p JOIN omop.death d USING (person_id)",
    ),
    (
        "scalar_subquery_in_select",
        "SELECT p.person_id, (SELECT count(*) FROM omop.visit_occurrence v WHERE v.person_id = p.person_id) "
        "AS visits FROM omop.person p",
    ),
    (
        "group_by_person_inner",
        "SELECT s.person_id FROM (SELECT person_id, count(*) AS n FROM omop.visit_occurrence "
        "GROUP BY person_id) s WHERE s.n >= 2",
    ),
    (
        "filter_clause",
        "SELECT d.person_id, count(*) FILTER (WHERE d.days_supply > 30) AS long_supplies "
        "FROM omop.drug_exposure d GROUP BY d.person_id",
    ),
    (
        "is_distinct_and_similar",
        "SELECT p.person_id FROM omop.person p WHERE p.location_id IS DISTINCT FROM NULL "
        "AND p.gender_source_value ~ '^[0-9]+$' AND p.race_source_value ~* '^(white|black)'",
    ),
    (
        "case_lookup_instead_of_values",
        "SELECT p.person_id, CASE p.gender_concept_id WHEN 8507 THEN 'M' WHEN 8532 THEN 'F' END AS label "
        "FROM omop.person p",
    ),
    (
        "parenthesised_query",
        "(SELECT person_id FROM omop.person WHERE year_of_birth < 1950)",
    ),
    (
        "case_insensitive_person_id",
        "SELECT P.PERSON_ID FROM OMOP.PERSON P",
    ),
    (
        "interval_and_extract_epoch",
        "SELECT vo.person_id, EXTRACT(EPOCH FROM (vo.visit_end_datetime - vo.visit_start_datetime)) / 3600 "
        "AS hours FROM omop.visit_occurrence vo WHERE vo.visit_end_datetime IS NOT NULL",
    ),
]


#: Calls the documentation promises, each valid as ``SELECT p.person_id, <call> AS v FROM omop.person p
#: GROUP BY p.person_id``.
ALLOWED_CALLS: list[str] = [
    "count(*)",
    "sum(1)",
    "avg(1)",
    "min(1)",
    "max(1)",
    "stddev(1)",
    "variance(1)",
    "coalesce(1, 2)",
    "nullif(1, 2)",
    "greatest(1, 2)",
    "least(1, 2)",
    "abs(-1)",
    "round(1.5)",
    "floor(1.5)",
    "ceil(1.5)",
    "mod(5, 2)",
    "lower('A')",
    "upper('a')",
    "length('a')",
    "substring('abc', 1, 2)",
    "substr('abc', 1, 2)",
    "trim(' a ')",
    "ltrim(' a')",
    "rtrim('a ')",
    "replace('a', 'a', 'b')",
    "concat('a', 'b')",
    "concat_ws(',', 'a', 'b')",
    "left('abc', 1)",
    "right('abc', 1)",
    "position('a' IN 'abc')",
    "strpos('abc', 'a')",
    "split_part('a,b', ',', 1)",
    "lpad('a', 3)",
    "rpad('a', 3)",
    "age(current_date)",
    "date_part('year', current_date)",
    "extract(year FROM current_date)",
    "date_trunc('month', current_date)",
    "to_char(current_date, 'YYYY')",
    "now()",
    "current_date",
    "bool_and(true)",
    "bool_or(true)",
    "string_agg('a', ',')",
    "btrim(' a ')",
    "char_length('a')",
    "ceiling(1.5)",
    "translate('a', 'a', 'b')",
    "initcap('a')",
    "regexp_replace('a', 'a', 'b')",
    "isfinite(current_date)",
    "var_samp(1)",
    "var_pop(1)",
    "stddev_pop(1)",
    "every(true)",
    "1 = ALL(ARRAY[1])",
    "reverse('a')",
    "starts_with('a', 'a')",
    "sign(-1)",
    "trunc(1.5)",
    "octet_length('a')",
    "percentile_disc(0.5) WITHIN GROUP (ORDER BY 1)",
    "mode() WITHIN GROUP (ORDER BY 1)",
    "'a' ~* 'a'",
    "current_timestamp",
    "count(DISTINCT 1)",
]

#: Window functions the documentation promises, each valid as
#: ``<call> OVER (PARTITION BY p.person_id ORDER BY p.year_of_birth)``.
ALLOWED_WINDOW_CALLS: list[str] = [
    "nth_value(1, 1)",
    "percent_rank()",
    "cume_dist()",
    "row_number()",
    "lag(1)",
]


#: Calls the cohort language refuses although PostgreSQL has them, with the reason code
#: (docs/query-policy.md says why: each can fail, overflow or explode on some values, or makes rows).
REFUSED_CALLS: dict[str, str] = {
    "ln(2)": "error_prone_function",
    "exp(1)": "error_prone_function",
    "power(2, 3)": "error_prone_function",
    "sqrt(4)": "error_prone_function",
    "make_date(2000, 1, 1)": "error_prone_function",
    "to_date('2000', 'YYYY')": "error_prone_function",
    "array_agg(1)": "error_prone_function",
    "cardinality(ARRAY[1])": "error_prone_function",
    "regexp_match('a', 'a')": "error_prone_function",
    "string_to_array('a,b', ',')": "error_prone_function",
    "array_position(ARRAY[1], 1)": "error_prone_function",
    "array_length(ARRAY[1], 1)": "error_prone_function",
    "array_to_string(ARRAY[1], ',')": "error_prone_function",
    "unnest(ARRAY[1])": "generated_rows",
    "make_time(1, 2, 3)": "error_prone_function",
    "make_timestamp(2000, 1, 1, 0, 0, 0)": "error_prone_function",
    "make_interval(days => 1)": "error_prone_function",
    "justify_days(INTERVAL '1 day')": "error_prone_function",
    "width_bucket(5, 0, 10, 5)": "error_prone_function",
    "now() AT TIME ZONE 'UTC'": "error_prone_function",
    "repeat('a', 2)": "error_prone_function",
    "to_number('1', '9')": "error_prone_function",
    "to_timestamp('2000', 'YYYY')": "error_prone_function",
    "cbrt(8)": "error_prone_function",
    "log(10)": "error_prone_function",
}
