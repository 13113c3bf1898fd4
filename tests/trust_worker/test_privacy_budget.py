"""The privacy budget holds against a hostile researcher: real PostgreSQL, the real reader role, real keys.

Every answer here goes through the trust's task handler (signature check, ledger, budget, pipeline as
``data_analyst_reader``, sealing) and is opened with the hub's key, as the hub would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from omop.crypto import open_result, sign_task
from omop.protocol import CohortTask, ResultEnvelope, TrustResult, new_query_id
from tests.conftest import READER_TEST_PASSWORD, OmopDb, PgServer, create_database, drop_database
from trust_worker.audit_log import AuditLog
from trust_worker.executor import ReaderExecutor
from trust_worker.policy_file import PrivacyPolicy, TrustPolicy
from trust_worker.synthetic_data import seed
from trust_worker.task_handler import TrustRuntime
from trust_worker.task_ledger import TaskLedger

pytestmark = pytest.mark.services

TRUST = "north"
# A rare finding (a made-up concept) recorded for 199 persons; whether the target, person 250, has it too
# is the secret. The researcher's query never changes: the two worlds are neighbouring databases.
FINDING = 2_000_000_001
COHORT = f"SELECT person_id FROM observation WHERE observation_concept_id = {FINDING}"
TARGET = 250
TARGET_ROW = 9_000_000_250


@pytest.fixture(scope="module")
def trust_db(pg_server: PgServer) -> Iterator[OmopDb]:
    from trust_worker.database_setup import init_db, reader_url

    url = create_database(pg_server.admin_url, "budget")
    try:
        init_db(url, READER_TEST_PASSWORD)
        seed(url, persons=400, seed=3)
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO omop.observation (observation_id, person_id, observation_concept_id, "
                "observation_date, observation_type_concept_id) "
                "SELECT 9000000000 + p, p, %s, DATE '2024-01-01', 32817 FROM generate_series(1, 199) p",
                (FINDING,),
            )
        yield OmopDb(url, reader_url(url, READER_TEST_PASSWORD))
    finally:
        drop_database(pg_server.admin_url, url)


@dataclass
class Trust:
    """One trust as its worker runs it, restartable: a new runtime over the same ledger file."""

    db: OmopDb
    state: Path
    policy: TrustPolicy
    hub_signing: Ed25519PrivateKey
    hub_encryption: X25519PrivateKey
    trust_signing: Ed25519PrivateKey
    runtime: TrustRuntime | None = None

    def start(self) -> None:
        self.runtime = TrustRuntime(
            trust_id=TRUST,
            hub_verify_key=self.hub_signing.public_key(),
            hub_encryption_key=self.hub_encryption.public_key(),
            trust_signing_key=self.trust_signing,
            policy=self.policy,
            executor=ReaderExecutor(self.db.reader_url),
            ledger=TaskLedger(self.state / "executed.sqlite"),
            audit=AuditLog(self.state / "audit.jsonl"),
        )

    def stop(self) -> None:
        assert self.runtime is not None
        self.runtime.executor.close()
        self.runtime.ledger.close()
        self.runtime = None

    def ask(self, sql: str, project: str, query_id: str | None = None) -> TrustResult:
        assert self.runtime is not None
        now = datetime.now(UTC)
        task = CohortTask(
            query_id=query_id or new_query_id(),
            trust_id=TRUST,
            sql=sql,
            project_id=project,
            issued_at=now - timedelta(seconds=1),
            expires_at=now + timedelta(minutes=10),
        )
        published: list[dict[str, object]] = []
        self.runtime.handle(sign_task(task, self.hub_signing).to_wire(), published.append)
        (wire,) = published
        return open_result(
            ResultEnvelope.from_wire(wire),
            trust_verify_keys={TRUST: self.trust_signing.public_key()},
            hub_x25519_private=self.hub_encryption,
        )


def set_world(db: OmopDb, target_has_it: bool) -> None:
    """The target's finding recorded or not: the only difference between the two worlds."""
    with psycopg.connect(db.admin_url) as conn:
        conn.execute("DELETE FROM omop.observation WHERE observation_id = %s", (TARGET_ROW,))
        if target_has_it:
            conn.execute(
                "INSERT INTO omop.observation (observation_id, person_id, observation_concept_id, "
                "observation_date, observation_type_concept_id) "
                "VALUES (%s, %s, %s, DATE '2024-01-01', 32817)",
                (TARGET_ROW, TARGET, FINDING),
            )


def make_trust(db: OmopDb, state: Path, **privacy: object) -> Trust:
    trust = Trust(
        db=db,
        state=state,
        policy=TrustPolicy(privacy=PrivacyPolicy.model_validate(privacy)),
        hub_signing=Ed25519PrivateKey.generate(),
        hub_encryption=X25519PrivateKey.generate(),
        trust_signing=Ed25519PrivateKey.generate(),
    )
    trust.start()
    return trust


def test_the_budget_refuses_the_query_after_the_last_it_can_pay_for_also_across_a_restart(
    trust_db: OmopDb, tmp_path: Path
) -> None:
    set_world(trust_db, True)
    trust = make_trust(trust_db, tmp_path, epsilon_per_query=0.5, budget_per_project=2.0)
    try:
        lefts = []
        for _ in range(3):
            result = trust.ask(COHORT, "p1")
            assert result.status == "released" and result.privacy is not None
            assert result.privacy.mode == "dp" and result.privacy.epsilon == 0.5
            lefts.append(result.privacy.budget_left)
        assert lefts == [1.5, 1.0, 0.5]
        trust.stop()  # the worker restarts: a new process over the same ledger
        trust.start()
        last = trust.ask(COHORT, "p1")
        assert last.status == "released" and last.privacy is not None and last.privacy.budget_left == 0.0
        refused = trust.ask(COHORT, "p1")
        assert (refused.status, refused.reason_code) == ("rejected", "budget_exhausted")
        assert refused.person_count is None and "0 left" in (refused.detail or "")
        # another project has its own budget; a refused query was not charged
        assert trust.ask(COHORT, "p2").status == "released"
        assert trust.runtime is not None
        (p1, p2) = trust.runtime.ledger.budgets(2.0)
        assert (p1.project_id, p1.queries, p1.spent, p1.left) == ("p1", 4, 2.0, 0.0)
        assert (p2.project_id, p2.queries, p2.left) == ("p2", 1, 1.5)
        # the governance team grants more: the next query runs
        trust.runtime.ledger.grant("p1", 0.5, "approved extension")
        assert trust.ask(COHORT, "p1").status == "released"
    finally:
        trust.stop()


def test_a_redelivered_query_is_not_charged_twice_and_a_refused_one_not_at_all(
    trust_db: OmopDb, tmp_path: Path
) -> None:
    set_world(trust_db, True)
    trust = make_trust(trust_db, tmp_path, epsilon_per_query=1.0, budget_per_project=3.0)
    try:
        query_id = new_query_id()
        first = trust.ask(COHORT, "p", query_id)
        again = trust.ask(COHORT, "p", query_id)  # the same task delivered twice: the stored answer
        assert first == again
        invalid = trust.ask("SELECT year_of_birth FROM person", "p")  # refused before any data is read
        assert invalid.status == "rejected" and invalid.reason_code == "no_person_id"
        assert trust.runtime is not None
        (budget,) = trust.runtime.ledger.budgets(3.0)
        assert (budget.queries, budget.spent) == (1, 1.0)
    finally:
        trust.stop()


def test_exact_mode_charges_nothing_and_says_so(trust_db: OmopDb, tmp_path: Path) -> None:
    trust = make_trust(trust_db, tmp_path, mode="exact")
    try:
        set_world(trust_db, True)
        exact = [trust.ask(COHORT, "p").person_count for _ in range(3)]
        assert exact == [200, 200, 200]
        set_world(trust_db, False)
        result = trust.ask(COHORT, "p")
        assert result.person_count == 199 and result.privacy is not None and result.privacy.mode == "exact"
        assert result.privacy.epsilon is None and result.privacy.scales == {}
        assert trust.runtime is not None and trust.runtime.ledger.budgets(10.0) == []
    finally:
        trust.stop()


TRIALS = 200
EPSILON = 0.25
BUDGET = 1.0  # four queries per trial: the attacker's total privacy loss is 1


def test_the_differencing_attack_guesses_membership_no_better_than_the_budget_allows(
    trust_db: OmopDb, tmp_path: Path
) -> None:
    """In each trial a coin decides whether the target is in the cohort (neighbouring databases, as far as
    the trust's figures go); the attacker asks until the budget refuses, then guesses with the likelihood
    ratio of the released person counts (the optimal test for them). With a total
    privacy loss of 1 no attacker can be right more often than e/(1+e) = 73 % of the time."""
    import random

    trust = make_trust(trust_db, tmp_path, epsilon_per_query=EPSILON, budget_per_project=BUDGET)
    coin = random.SystemRandom()
    right = 0
    try:
        for trial in range(TRIALS):
            member = coin.random() < 0.5
            set_world(trust_db, member)
            llr = 0.0
            answers = 0
            while True:
                result = trust.ask(COHORT, f"attack-{trial}")
                if result.status == "rejected":
                    assert result.reason_code == "budget_exhausted"
                    break
                assert result.status == "released" and result.privacy is not None
                answers += 1
                scale = result.privacy.scales["person_count"]
                y = result.person_count or 0
                # log P(y | 200) - log P(y | 199) for discrete Laplace noise of this scale
                llr += (abs(y - 199) - abs(y - 200)) / scale
            assert answers == round(BUDGET / EPSILON)  # the budget stops it, and only it
            guess = llr > 0 if llr != 0 else coin.random() < 0.5
            right += guess == member
        accuracy = right / TRIALS
        bound = math.e**BUDGET / (1 + math.e**BUDGET)
        slack = 3 * math.sqrt(bound * (1 - bound) / TRIALS)
        print(f"differencing attack: right {accuracy:.1%} of {TRIALS} trials (bound {bound:.1%})")
        assert accuracy <= bound + slack
    finally:
        trust.stop()


def test_without_noise_the_same_attack_always_wins(trust_db: OmopDb, tmp_path: Path) -> None:
    """The control: in exact mode one pair of queries gives the target away every time."""
    trust = make_trust(trust_db, tmp_path, mode="exact")
    try:
        for _ in range(10):
            member = bool(datetime.now(UTC).microsecond % 2)
            set_world(trust_db, member)
            result = trust.ask(COHORT, "p")
            assert (result.person_count == 200) == member
    finally:
        trust.stop()
