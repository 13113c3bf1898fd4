"""dp mode end to end: a local federation started with ``stack up --privacy dp``, used through the CLI.

What a researcher sees (noisy figures with a ± for the noise, the trusts in each pooled cell), what a
trust's governance team runs (``trust budget``, ``trust budget grant``) and that the budget outlives a
worker restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import psycopg
import pytest

from tests.cli_runner import run_omopfed
from tests.omopfed.deployments import LocalDeployment, running

pytestmark = [pytest.mark.services, pytest.mark.slow]

SQL = "SELECT person_id FROM person"
SIX = "omopfed/examples/flower-six-features.sql"


@pytest.fixture(scope="module", params=["local"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    # params=["local"]: running() starts a LocalDeployment
    yield from cast(
        Iterator[LocalDeployment],
        running(request, tmp_path_factory, "dp", persons=[400, 300], privacy="dp", epsilon=1.0, budget=4.0),
    )


def trust_cli(deployment: LocalDeployment, trust_id: str, *args: str) -> str:
    env = deployment.state.trusts[trust_id].env_file
    proc = run_omopfed("trust", *args, "--env-file", env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_figures_come_with_their_noise_and_the_trusts_in_each_cell(deployment: LocalDeployment) -> None:
    code, report = deployment.submit_json("--sql", SQL, "--project", "looks", "--timeout", "60")
    assert code == 0
    for trust_id, entry in report["trusts"].items():
        privacy = entry["privacy"]
        assert privacy["mode"] == "dp" and privacy["epsilon"] == 1.0 and privacy["budget_left"] == 3.0
        assert privacy["scales"]["person_count"] == pytest.approx(2.5)
        assert set(privacy["scales"]) == {"person_count", "sex", "age", "rows"}
        truth = deployment.count_persons(trust_id, SQL)
        assert abs(entry["person_count"] - truth) <= 60  # noise, not another cohort (P(miss) < 1e-10)
    fed = report["federated"]
    assert fed["margins"]["person_count"] > 0
    assert fed["noisy_trusts"] == ["t1", "t2"]
    for table in ("sex", "age"):
        assert set(fed["cells"][table]) == set(fed[table])
        for cell in fed["cells"][table].values():
            assert set(cell["trusts"]) <= {"t1", "t2"} and cell["trusts"] and cell["margin"] > 0
    human = deployment.submit("--sql", SQL, "--project", "looks-human", "--timeout", "60")
    assert human.returncode == 0, human.stderr
    assert "federated persons:" in human.stdout and "±" in human.stdout
    assert "dp ε 1" in human.stdout


def test_numeric_statistics_need_bounds_and_come_back_noisy(deployment: LocalDeployment) -> None:
    sql = Path(SIX).read_text()
    code, report = deployment.submit_json(
        "--sql", sql, "--project", "numeric", "--numeric", "bmi:10:70,hba1c:3:15", "--timeout", "60"
    )
    assert code == 0, report
    bmi = report["federated"]["numeric"]["bmi"]
    assert bmi["status"] == "released" and bmi["mean_margin"] > 0
    total = count = 0.0
    for trust_id in deployment.trust_ids:
        with psycopg.connect(deployment.trust_admin_url(trust_id)) as conn:
            conn.execute("SET search_path = omop")
            row = conn.execute(
                f"SELECT sum(least(greatest(bmi, 10), 70)), count(bmi) FROM ({sql}) c WHERE bmi IS NOT NULL"
            ).fetchone()
        assert row is not None
        total, count = total + float(row[0]), count + float(row[1])
    # the noisy mean is the true mean of the clamped values give or take the noise (4x the 95 % margin:
    # a miss has a probability far below one in a thousand)
    assert abs(bmi["mean"] - total / count) <= 4 * bmi["mean_margin"]
    assert abs(bmi["n"] - count) <= 4 * bmi["n_margin"]
    for entry in report["trusts"].values():
        assert entry["privacy"]["bounds"] == {"bmi": [10.0, 70.0], "hba1c": [3.0, 15.0]}
        assert "numeric.bmi.sum" in entry["privacy"]["scales"]
    # without bounds a dp trust cannot calibrate the noise: refused before anything is read or charged
    code, report = deployment.submit_json(
        "--sql", sql, "--project", "numeric-nobounds", "--numeric", "bmi", "--timeout", "60"
    )
    assert code == 4
    for entry in report["trusts"].values():
        assert entry["reason_code"] == "bounds_required" and "--numeric bmi:LOWER:UPPER" in entry["detail"]
    assert "numeric-nobounds" not in trust_cli(deployment, "t1", "budget")


def test_the_budget_stops_a_project_also_after_a_worker_restart(deployment: LocalDeployment) -> None:
    for _ in range(3):
        code, _report = deployment.submit_json("--sql", SQL, "--project", "spender", "--timeout", "60")
        assert code == 0
    deployment.stop_trust_worker("t1")
    deployment.start_trust_worker("t1")
    code, report = deployment.submit_json("--sql", SQL, "--project", "spender", "--timeout", "60")
    assert code == 0 and report["trusts"]["t1"]["privacy"]["budget_left"] == 0.0
    code, report = deployment.submit_json("--sql", SQL, "--project", "spender", "--timeout", "60")
    assert code == 4
    for entry in report["trusts"].values():
        assert entry["status"] == "rejected" and entry["reason_code"] == "budget_exhausted"
        assert "grant more" in entry["detail"] and entry.get("person_count") is None
    shown = trust_cli(deployment, "t1", "budget")
    assert "spender" in shown
    granted = trust_cli(
        deployment, "t1", "budget", "grant", "--project", "spender", "--epsilon", "1", "--reason", "amended"
    )
    assert "1 left" in granted
    assert any(e["decision"] == "budget_granted" for e in deployment.audit_entries("t1"))
    code, report = deployment.submit_json("--sql", SQL, "--project", "spender", "--timeout", "60")
    assert code == 3  # partial: t1 answers again, t2 still refuses
    assert report["trusts"]["t1"]["status"] == "released"
    assert report["trusts"]["t2"]["reason_code"] == "budget_exhausted"


def test_a_nonsense_grant_is_a_one_line_error(deployment: LocalDeployment) -> None:
    env = deployment.state.trusts["t1"].env_file
    for args, needle in [
        (["--epsilon", "0", "--reason", "x"], "--epsilon must be above 0"),
        (["--epsilon", "nan", "--reason", "x"], "--epsilon must be above 0"),
        (["--epsilon", "1", "--reason", " "], "--reason must say why"),
        (["--epsilon", "1", "--reason", "x", "--project", "no spaces"], "is not a project id"),
    ]:
        full = args if "--project" in args else ["--project", "p", *args]
        proc = run_omopfed("trust", "budget", "grant", *full, "--env-file", env)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
