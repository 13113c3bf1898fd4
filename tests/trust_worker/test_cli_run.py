"""``omopfed trust check``, ``trust audit`` and the worker's refusal to start, through the real command."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from omop.dburl import with_user
from omop.keys import generate_hub_keys, generate_trust_key, pin_hub
from omop.protocol import EXECUTION_FAILED, EXECUTION_FAILED_DETAIL
from tests.cli_runner import run_omopfed
from tests.conftest import OmopDb
from trust_worker.database_setup import BASE_ROLE

pytestmark = pytest.mark.services


def omopfed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_omopfed(*args, env=env, timeout=120)


def sql_file(tmp_path: Path, sql: str) -> str:
    path = tmp_path / "q.sql"
    path.write_text(sql)
    return str(path)


@pytest.mark.parametrize(
    ("sql", "code", "status"),
    [
        ("SELECT person_id, year_of_birth FROM person", 0, "released"),
        ("SELECT person_id FROM person WHERE year_of_birth < 1970", 0, "suppressed"),
        ("SELECT person_id FROM person WHERE false", 0, "suppressed"),
        ("SELECT 1; DROP TABLE person", 4, "rejected"),
    ],
)
def test_check_json_and_exit_codes(
    fixture_db: OmopDb, tmp_path: Path, sql: str, code: int, status: str
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('statement_timeout_s = 0.5\n[privacy]\nmode = "exact"\n')
    proc = omopfed(
        "trust",
        "check",
        "--db-url",
        fixture_db.reader_url,
        "--sql-file",
        sql_file(tmp_path, sql),
        "--policy",
        str(policy),
        "--json",
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == status
    if status == "released":
        assert out["person_count"] == 16 and sum(out["sex"].values()) == 16 and sum(out["age"].values()) == 16
    else:
        assert "person_count" not in out and "sex" not in out


def test_check_error_is_the_generic_answer_and_the_cause_is_shown_locally(
    fixture_db: OmopDb, tmp_path: Path
) -> None:
    """A failure at execution (here: a privilege the reader lost) is answered with the one wording; the
    governance team running the check sees the real cause, marked as never sent."""
    with psycopg.connect(fixture_db.admin_url, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("REVOKE SELECT ON omop.measurement FROM {}").format(pgsql.Identifier(BASE_ROLE))
        )
    cohort = sql_file(tmp_path, "SELECT m.person_id FROM measurement m")
    proc = omopfed("trust", "check", "--db-url", fixture_db.reader_url, "--sql-file", cohort, "--json")
    assert proc.returncode == 4, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["status"], out["reason_code"], out["detail"]) == (
        "error",
        EXECUTION_FAILED,
        EXECUTION_FAILED_DETAIL,
    )
    assert "SQLSTATE 42501" in out["cause_not_sent"]
    text = omopfed("trust", "check", "--db-url", fixture_db.reader_url, "--sql-file", cohort)
    assert "never sent to the hub" in text.stdout and "42501" in text.stdout


def test_check_refuses_a_role_whose_temp_files_are_unbounded(fixture_db: OmopDb, tmp_path: Path) -> None:
    """A login role with the reader's grants but no temp_file_limit (and no right to set one)."""
    role, password = f"omopfed_unbounded_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    with psycopg.connect(fixture_db.admin_url, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                pgsql.Identifier(role), pgsql.Literal(password)
            )
        )
        conn.execute(pgsql.SQL("GRANT {} TO {}").format(pgsql.Identifier(BASE_ROLE), pgsql.Identifier(role)))
    try:
        url = with_user(fixture_db.admin_url, role, password)
        cohort = sql_file(tmp_path, "SELECT person_id FROM person")
        proc = omopfed("trust", "check", "--db-url", url, "--sql-file", cohort, "--json")
        assert proc.returncode == 4, proc.stderr
        out = json.loads(proc.stdout)
        assert (
            out["status"] == "error" and "temp_file_limit" in out["detail"] and "superuser" in out["detail"]
        )
    finally:
        with psycopg.connect(fixture_db.admin_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP ROLE {}").format(pgsql.Identifier(role)))


def test_check_as_a_superuser_is_refused(fixture_db: OmopDb, tmp_path: Path) -> None:
    proc = omopfed(
        "trust",
        "check",
        "--db-url",
        fixture_db.admin_url,
        "--sql-file",
        sql_file(tmp_path, "SELECT person_id FROM person"),
        "--json",
    )
    assert proc.returncode == 4
    out = json.loads(proc.stdout)
    assert out["status"] == "error" and "not read-only" in out["detail"] and "superuser" in out["detail"]


def test_check_bad_input(fixture_db: OmopDb, tmp_path: Path) -> None:
    missing = omopfed(
        "trust", "check", "--db-url", fixture_db.reader_url, "--sql-file", str(tmp_path / "nope.sql")
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    bad_policy = tmp_path / "p.toml"
    bad_policy.write_text("threshold = 5\n")
    proc = omopfed(
        "trust",
        "check",
        "--db-url",
        fixture_db.reader_url,
        "--sql-file",
        sql_file(tmp_path, "SELECT person_id FROM person"),
        "--policy",
        str(bad_policy),
    )
    assert proc.returncode == 2 and "at least 10" in proc.stderr and "Traceback" not in proc.stderr


def test_check_on_eunomia_gi_bleed_matches_direct_sql(omop_db: OmopDb, tmp_path: Path) -> None:
    from trust_worker.eunomia_loader import load_eunomia

    load_eunomia(omop_db.admin_url)
    cohort = (
        "SELECT person_id, condition_start_date FROM condition_occurrence WHERE condition_concept_id = 192671"
    )
    policy = tmp_path / "exact.toml"
    policy.write_text('[privacy]\nmode = "exact"\n')
    proc = omopfed(
        "trust",
        "check",
        "--db-url",
        omop_db.reader_url,
        "--sql-file",
        sql_file(tmp_path, cohort),
        "--policy",
        str(policy),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["person_count"] == 479
    with psycopg.connect(omop_db.admin_url) as conn:
        rows = conn.execute(DIRECT_DEMOGRAPHICS, {"concept": 192671}).fetchall()
    sex = Counter(s for s, _ in rows)
    age = Counter(a for _, a in rows)
    assert out["sex"] == {k: v for k, v in sex.items() if v}
    released = {k: v for k, v in out["age"].items() if v}
    expected = {k: v for k, v in age.items() if v >= 10}
    small = {k: v for k, v in age.items() if v < 10}
    assert {k: v for k, v in released.items() if k != "Other"} == {
        k: v for k, v in expected.items() if k in released
    }
    assert sum(released.values()) == 479 == sum(age.values())
    assert not small or "Other" in released


# The same sex and age bands, computed directly over the cohort's distinct persons.
DIRECT_DEMOGRAPHICS = """
WITH persons AS (
  SELECT DISTINCT person_id FROM omop.condition_occurrence WHERE condition_concept_id = %(concept)s
), years AS (
  SELECT p.gender_concept_id,
         date_part('year', age(current_date, coalesce(p.birth_datetime::date,
             make_date(p.year_of_birth, coalesce(p.month_of_birth, 7), coalesce(p.day_of_birth, 1))))) AS y
  FROM omop.person p JOIN persons USING (person_id)
)
SELECT CASE gender_concept_id WHEN 8507 THEN 'Male' WHEN 8532 THEN 'Female' ELSE 'Unknown' END,
       CASE WHEN y >= 90 THEN '90+' ELSE (floor(y / 10) * 10)::int || '-' || (floor(y / 10) * 10 + 9)::int END
FROM years"""


def test_worker_refuses_to_start_with_a_writable_role(fixture_db: OmopDb, tmp_path: Path) -> None:
    generate_hub_keys(tmp_path / "hub")
    generate_trust_key("t1", tmp_path / "keys")
    pin_hub(tmp_path / "keys", tmp_path / "hub" / "hub.pub.json")
    env = {
        "OMOPFED_TRUST_ID": "t1",
        "OMOPFED_KEYS_DIR": str(tmp_path / "keys"),
        "OMOPFED_STATE_DIR": str(tmp_path / "state"),
        "OMOPFED_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    proc = omopfed("trust", "worker", env={**env, "OMOPFED_READER_DB_URL": fixture_db.admin_url})
    assert proc.returncode == 1 and "not read-only" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "keys" / "trust_t1.key").chmod(0o644)
    proc = omopfed("trust", "worker", env={**env, "OMOPFED_READER_DB_URL": fixture_db.reader_url})
    assert proc.returncode != 0 and "chmod 600" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "keys" / "trust_t1.key").chmod(0o600)
    policy = tmp_path / "policy.toml"
    policy.write_text("threshold = 3\n")
    proc = omopfed(
        "trust",
        "worker",
        env={**env, "OMOPFED_READER_DB_URL": fixture_db.reader_url, "OMOPFED_POLICY_FILE": str(policy)},
    )
    assert proc.returncode == 2 and "at least 10" in proc.stderr
    proc = omopfed("trust", "worker", env={k: v for k, v in env.items() if k != "OMOPFED_TRUST_ID"})
    assert proc.returncode == 2 and "trust id" in proc.stderr


def test_audit_lists_and_verifies(tmp_path: Path) -> None:
    from trust_worker.audit_log import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(
        query_id="q1",
        project_id="p",
        sql="SELECT person_id FROM person",
        decision="released",
        released={"person_count": 16},
    )
    log.append(query_id="q2", project_id="p", sql="DELETE FROM person", decision="rejected", detail="no")
    log.append(
        query_id="q3",
        project_id="p",
        sql="SELECT person_id FROM person",
        decision="error",
        detail=EXECUTION_FAILED_DETAIL,
        execution={
            "elapsed_ms": 301.2,
            "failure": {"cause": "statement_timeout", "description": "timed out"},
        },
    )
    listed = omopfed("trust", "audit", "--state-dir", str(tmp_path), "--json")
    decisions = [json.loads(line)["decision"] for line in listed.stdout.splitlines()]
    assert decisions == ["released", "rejected", "error"]
    # the staff's listing shows the real cause of a failure, which the hub never received
    assert "timed out" in omopfed("trust", "audit", "--state-dir", str(tmp_path)).stdout
    assert omopfed("trust", "audit", "--state-dir", str(tmp_path), "--verify").returncode == 0
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    (tmp_path / "audit.jsonl").write_text(lines[1] + "\n" + lines[2] + "\n")
    broken = omopfed("trust", "audit", "--state-dir", str(tmp_path), "--verify")
    assert broken.returncode == 1 and "line 1" in broken.stderr


def test_check_in_dp_mode_shows_noisy_figures_and_says_so(omop_db: OmopDb, tmp_path: Path) -> None:
    from trust_worker.synthetic_data import seed

    seed(omop_db.admin_url, persons=300, seed=2)
    args = ["trust", "check", "--db-url", omop_db.reader_url, "--sql-file"]
    args.append(sql_file(tmp_path, "SELECT person_id FROM person"))
    proc = omopfed(*args, "--json")  # no policy file: the default, dp
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["privacy"]["mode"] == "dp" and out["privacy"]["scales"]["person_count"] == pytest.approx(2.5)
    assert abs(out["person_count"] - 300) <= 60  # noise of scale 2.5: beyond 60 has probability < 1e-10
    human = omopfed(*args)
    assert human.returncode == 0 and "privacy: dp, epsilon 1.0 per query" in human.stdout
