"""Answers say nothing about how a query ran: real PostgreSQL, the real reader role, real keys and hub.

A hostile researcher who can make a query fail, or run slowly, only when one target person has some
property must learn nothing from the answer but its status. Every answer here goes the whole way: the
trust's task handler runs it as ``data_analyst_reader`` under the policy's limits, seals it, the hub's
reducer verifies and decrypts it into a real hub store, and the researcher's report is built from that.
The timeout and the temporary-file limit are hit by legitimately heavy cohorts on seeded data (a self-join
of ``measurement`` on ``person_id``), not by sleeping functions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_broker.finalize import finalize_if_due
from hub_broker.reducer import Reducer
from hub_broker.report import query_report
from hub_broker.store import HubStore, utcnow
from omop.crypto import sign_task
from omop.protocol import (
    EXECUTION_FAILED,
    EXECUTION_FAILED_DETAIL,
    CohortTask,
    answer_timestamp,
    new_query_id,
)
from tests.conftest import READER_TEST_PASSWORD, OmopDb, PgServer, create_database, drop_database
from trust_worker.audit_log import AuditLog
from trust_worker.executor import ExecutionFailed, Limits, ReaderExecutor
from trust_worker.pipeline import answer_cohort
from trust_worker.policy_file import TrustPolicy
from trust_worker.synthetic_data import seed
from trust_worker.task_handler import TrustRuntime
from trust_worker.task_ledger import TaskLedger

pytestmark = pytest.mark.services

TRUST = "north"
PERSONS = 20_000

# Five copies of each person's measurement rows (about 3.4 per person): ~26 million joined rows on this
# data, several seconds of honest work, far past a 0.3 s statement timeout.
SLOW = (
    "SELECT a.person_id FROM measurement a JOIN measurement b ON b.person_id = a.person_id "
    "JOIN measurement c ON c.person_id = a.person_id JOIN measurement d ON d.person_id = a.person_id "
    "JOIN measurement e ON e.person_id = a.person_id"
)
# Every pair of a person's measurements (~270,000 rows): the materialised cohort spills about 10 MB of
# temporary files past a 4 MB work_mem, far beyond a 1 MB temp_file_limit.
SPILLS = (
    "SELECT a.person_id, a.measurement_id, b.measurement_id AS other_id, a.value_as_number "
    "FROM measurement a JOIN measurement b ON b.person_id = a.person_id"
)
RELEASED = "SELECT p.person_id, p.year_of_birth FROM person p"
SUPPRESSED = "SELECT p.person_id FROM person p WHERE p.year_of_birth < 1800"
REJECTED = "DELETE FROM person"

# A SQLSTATE is five characters: a class of two digits (or XX, HV, P0, F0) and three more.
SQLSTATE = re.compile(r"\b(?:[0-9]{2}|XX|HV|P0|F0)[0-9A-Z]{3}\b")


@pytest.fixture(scope="module")
def bulk_db(pg_server: PgServer) -> Iterator[OmopDb]:
    """A trust database with the bulk synthetic data (~200,000 rows), shared by this module's tests."""
    from trust_worker.database_setup import init_db, reader_url

    url = create_database(pg_server.admin_url, "privacy")
    try:
        init_db(url, READER_TEST_PASSWORD)
        seed(url, persons=PERSONS, seed=5)
        yield OmopDb(url, reader_url(url, READER_TEST_PASSWORD))
    finally:
        drop_database(pg_server.admin_url, url)


class DividesByZero(ReaderExecutor):
    """The real executor on the real server, made to run a statement that divides by zero.

    Going through the executor keeps this failure independent of what the SQL validator accepts.
    """

    def fetch_one(self, statement: str, limits: Limits) -> tuple[Any, ...]:
        return super().fetch_one("SELECT 1 / (count(*) - count(*)) FROM omop.person", limits)


@dataclass
class Federation:
    """One trust runtime (per policy) and one hub (keys, reducer, store) wired together in-process."""

    db: OmopDb
    tmp: Path
    hub_signing: Ed25519PrivateKey
    hub_encryption: X25519PrivateKey
    trust_signing: Ed25519PrivateKey
    store: HubStore
    audit: AuditLog

    def ask(
        self, sql: str, policy: TrustPolicy, executor: ReaderExecutor | None = None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Submit ``sql``; return (sealed wire dict, decrypted result, report entry, audit entry)."""
        query_id = new_query_id()
        now = datetime.now(UTC)
        task = CohortTask(
            query_id=query_id,
            trust_id=TRUST,
            sql=sql,
            project_id="privacy-tests",
            issued_at=now - timedelta(seconds=1),
            expires_at=now + timedelta(minutes=10),
        )
        self.store.create_query(
            query_id=query_id,
            project_id="privacy-tests",
            sql=sql,
            trusts=[TRUST],
            threshold=10,
            deadline_at=utcnow() + timedelta(minutes=5),
        )
        runtime = TrustRuntime(
            trust_id=TRUST,
            hub_verify_key=self.hub_signing.public_key(),
            hub_encryption_key=self.hub_encryption.public_key(),
            trust_signing_key=self.trust_signing,
            policy=policy,
            executor=executor or ReaderExecutor(self.db.reader_url),
            ledger=TaskLedger(self.tmp / f"ledger-{query_id}.sqlite"),
            audit=self.audit,
        )
        published: list[dict[str, Any]] = []
        before = datetime.now(UTC)
        try:
            runtime.handle(sign_task(task, self.hub_signing).to_wire(), published.append)
        finally:
            runtime.executor.close()
            runtime.ledger.close()
        (wire,) = published
        reducer = Reducer(self.store, self.hub_encryption, self.tmp, {TRUST: self.trust_signing.public_key()})
        assert reducer.handle(TRUST, json.dumps(wire).encode()) == "stored"
        query = finalize_if_due(self.store, query_id)
        assert query is not None
        (answer,) = query.answers
        assert answer.result is not None
        # stamped with the time the task was received, in whole seconds, never the time it finished
        produced = datetime.fromisoformat(answer.result["produced_at"])
        assert answer_timestamp(before) <= produced <= answer_timestamp(before + timedelta(seconds=0.2))
        entry = [e for e in self.audit.entries() if e["query_id"] == query_id][-1]
        return wire, answer.result, query_report(query)["trusts"][TRUST], entry


@pytest.fixture(scope="module")
def federation(bulk_db: OmopDb, tmp_path_factory: pytest.TempPathFactory) -> Federation:
    tmp = tmp_path_factory.mktemp("privacy")
    return Federation(
        db=bulk_db,
        tmp=tmp,
        hub_signing=Ed25519PrivateKey.generate(),
        hub_encryption=X25519PrivateKey.generate(),
        trust_signing=Ed25519PrivateKey.generate(),
        store=HubStore(f"sqlite:///{tmp / 'hub.db'}"),
        audit=AuditLog(tmp / "audit.jsonl"),
    )


def assert_says_nothing_about_execution(*documents: dict[str, Any], failure: dict[str, Any] | None) -> None:
    """No timing field, no SQLSTATE, no exception class or cause anywhere in what the hub holds."""
    for document in documents:
        text = json.dumps(document, sort_keys=True)
        assert "elapsed" not in text and "SQLSTATE" not in text and "duration" not in text
        if failure is not None:
            assert failure["sqlstate"] not in text
            assert failure["error_class"] not in text
            assert failure["cause"] not in text
            assert failure["description"] not in text


def non_released_text(result: dict[str, Any]) -> str:
    """The decrypted answer without figures, ids and timestamp: a SQLSTATE-like token would be a leak."""
    assert result["status"] != "released"
    return json.dumps({k: v for k, v in result.items() if k not in ("query_id", "produced_at")})


# -- every kind of answer ----------------------------------------------------------------------------------


def test_released_suppressed_and_rejected_answers_carry_no_timing(federation: Federation) -> None:
    for sql, status in ((RELEASED, "released"), (SUPPRESSED, "suppressed"), (REJECTED, "rejected")):
        wire, result, report, audit = federation.ask(sql, TrustPolicy())
        assert result["status"] == report["status"] == status
        assert_says_nothing_about_execution(wire, result, report, failure=None)
        if status != "released":
            assert not SQLSTATE.search(non_released_text(result))
        # the trust's staff still see how it ran
        assert audit["execution"]["elapsed_ms"] >= 0 and "failure" not in audit["execution"]


def test_timeout_division_by_zero_and_temp_file_limit_give_one_identical_answer(
    federation: Federation,
) -> None:
    started = time.monotonic()
    timeout = federation.ask(SLOW, TrustPolicy(statement_timeout_s=0.3))
    # the policy's 0.3 s applied, not a default of the executor's: the whole round trip is quick
    assert time.monotonic() - started < 10
    division = federation.ask(RELEASED, TrustPolicy(), DividesByZero(federation.db.reader_url))
    spill = federation.ask(SPILLS, TrustPolicy(temp_file_limit_mb=1, work_mem_mb=4))

    causes = {}
    for wire, result, report, audit in (timeout, division, spill):
        failure = audit["execution"]["failure"]
        causes[failure["cause"]] = failure["sqlstate"]
        assert (result["status"], result["reason_code"], result["detail"]) == (
            "error",
            EXECUTION_FAILED,
            EXECUTION_FAILED_DETAIL,
        )
        assert (report["status"], report["detail"]) == ("error", EXECUTION_FAILED_DETAIL)
        assert_says_nothing_about_execution(wire, result, report, failure=failure)
        assert not SQLSTATE.search(non_released_text(result))
        # the audit entry tells the staff what happened; the hub got only the fixed wording
        assert audit["decision"] == "error" and audit["detail"] == EXECUTION_FAILED_DETAIL
        assert audit["execution"]["elapsed_ms"] >= 0
    assert causes == {"statement_timeout": "57014", "database_error": "22012", "temp_file_limit": "53400"}
    # the three answers are the same message but for the query id
    decrypted = [
        {k: v for k, v in answer[1].items() if k not in ("query_id", "produced_at")}
        for answer in (timeout, division, spill)
    ]
    assert decrypted[0] == decrypted[1] == decrypted[2]
    assert "0.3 s" in timeout[3]["execution"]["failure"]["description"]
    assert "1 MB" in spill[3]["execution"]["failure"]["description"]


# -- the pieces, directly ----------------------------------------------------------------------------------


def test_answer_cohort_runs_under_the_policy_timeout(bulk_db: OmopDb) -> None:
    """``answer_cohort`` takes its limits from the policy (there is no other source)."""
    executor = ReaderExecutor(bulk_db.reader_url)
    started = time.monotonic()
    try:
        answer = answer_cohort(
            SLOW,
            query_id="q",
            trust_id="t",
            project_id=None,
            policy=TrustPolicy(statement_timeout_s=0.3),
            executor=executor,
        )
    finally:
        executor.close()
    assert time.monotonic() - started < 10
    assert (answer.result.status, answer.result.detail) == ("error", EXECUTION_FAILED_DETAIL)
    assert answer.execution["failure"]["cause"] == "statement_timeout"
    assert answer.execution["failure"]["sqlstate"] == "57014"
    assert 250 <= answer.execution["elapsed_ms"] < 10_000


def test_division_by_zero_through_the_executor_is_classified_for_staff_only(bulk_db: OmopDb) -> None:
    executor = ReaderExecutor(bulk_db.reader_url)
    try:
        with pytest.raises(ExecutionFailed) as failed:
            executor.fetch_one("SELECT 1 / (count(*) - count(*)) FROM omop.person", TrustPolicy().limits())
    finally:
        executor.close()
    record = failed.value.audit_record()
    assert record == {
        "cause": "database_error",
        "description": str(failed.value),
        "sqlstate": "22012",
        "error_class": "DivisionByZero",
    }
    assert "division by zero" not in str(failed.value)  # the server's own text is never kept


def test_temp_file_limit_is_enforced_per_query_from_the_policy(bulk_db: OmopDb) -> None:
    limits = replace(TrustPolicy().limits(), work_mem_mb=4, temp_file_limit_mb=1)
    executor = ReaderExecutor(bulk_db.reader_url)
    try:
        assert executor.temp_files().settable  # init-db granted SET ON PARAMETER temp_file_limit
        statement = f"WITH c AS MATERIALIZED ({SPILLS}) SELECT count(*) FROM c"
        with pytest.raises(ExecutionFailed) as failed:
            executor.fetch_one(statement, limits)
        assert (failed.value.cause, failed.value.sqlstate) == ("temp_file_limit", "53400")
        # the same statement completes under the default policy's 1 GB
        (count,) = executor.fetch_one(statement, replace(limits, temp_file_limit_mb=1024))
    finally:
        executor.close()
    assert count > 200_000
