"""The hub service against a real local federation: ``omopfed hub serve`` as a real subprocess (the stack's
env file: its broker, store and keys), the stack's reducer and trust workers answering, httpx as the
researcher's client with nothing but a token.

Every refusal also checks that nothing reached the store and nothing was signed for publishing (the hub
keeps every signed task it publishes, so no new ``sent_tasks`` row means nothing was published)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hub_broker.accounts import Accounts
from hub_broker.store import SentTask
from omopfed.localservices.processes import free_port
from tests.cli_runner import OMOPFED
from tests.omopfed.deployments import Deployment, running
from tests.omopfed.federation_helpers import eventually

pytestmark = [pytest.mark.services, pytest.mark.slow]

ALL_SQL = "SELECT person_id, year_of_birth FROM person"


@pytest.fixture(scope="module", params=["local"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    yield from running(request, tmp_path_factory, "hub-service", persons=[60, 40])


@dataclass
class Service:
    url: str
    log: Path
    tokens: dict[str, str]
    deployment: Deployment

    def client(self, who: str | None = None, token: str | None = None) -> httpx.Client:
        secret = token if token is not None else (self.tokens[who] if who else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def recorded(self) -> tuple[int, int]:
        """(queries in the store, signed tasks kept for publishing)."""
        store = self.deployment.hub_store()
        with store.session() as s:
            sent = int(s.scalar(select(func.count()).select_from(SentTask)) or 0)
        return store.count_queries(), sent


@pytest.fixture(scope="module")
def service(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    accounts = Accounts(deployment.hub_store())
    tokens = {
        "alice": accounts.add_user("alice"),
        "bob": accounts.add_user("bob"),
        "carol": accounts.add_user("carol"),
        "root": accounts.add_user("root", admin=True),
    }
    for project in ("gi-bleed", "other"):
        accounts.add_project(project)
    accounts.add_member("gi-bleed", "alice")
    accounts.add_member("gi-bleed", "bob")
    accounts.add_member("other", "carol")
    accounts.disable_user("carol")
    port = free_port()
    log = tmp_path_factory.mktemp("hub-serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMOPFED_")}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [OMOPFED, "hub", "serve", "--env-file", str(deployment.hub_env_file), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return bool(httpx.get(f"{url}/healthz", timeout=2).json() == {"status": "ok"})
            except httpx.TransportError:
                return False

        eventually(healthy, timeout=60, what="hub serve answering /healthz")
        yield Service(url, log, tokens, deployment)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert "POST /v1/queries" in output  # the access log was written, and
    for token in tokens.values():  # no token ever reached it
        assert token not in output


def _report(client: httpx.Client, query_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        response = client.get(f"/v1/queries/{query_id}")
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        if report["status"] != "pending":
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.2)


def test_a_researcher_with_only_a_token_submits_and_gets_the_pooled_result(service: Service) -> None:
    before = service.recorded()
    with service.client("alice") as alice:
        response = alice.post("/v1/queries", json={"sql": ALL_SQL, "project": "gi-bleed", "timeout_s": 90})
        assert response.status_code == 202, response.text
        query_id = response.json()["query_id"]
        assert set(response.json()) == {"query_id"}
        report = _report(alice, query_id)
    assert report["status"] == "complete" and report["project_id"] == "gi-bleed"
    assert set(report["trusts"]) == {"t1", "t2"}
    direct = {t: service.deployment.count_persons(t, ALL_SQL) for t in service.deployment.trust_ids}
    assert {t: e["person_count"] for t, e in report["trusts"].items()} == direct
    assert report["federated"]["person_count"] == sum(direct.values())
    assert service.recorded() == (before[0] + 1, before[1] + 2)
    # exactly the object hub result --json (and hub submit --json) prints
    from hub_broker.report import query_report

    stored = service.deployment.hub_store().get(query_id)
    assert stored is not None and report == query_report(stored)
    # the owner sees it in their list, another researcher does not, the administrator does
    with service.client("alice") as alice:
        mine = alice.get("/v1/queries").json()["queries"]
    assert [(q["query_id"], q["project"], q["status"], q["sql"]) for q in mine][:1] == [
        (query_id, "gi-bleed", "complete", ALL_SQL)
    ]
    with service.client("bob") as bob:
        assert query_id not in {q["query_id"] for q in bob.get("/v1/queries").json()["queries"]}
    with service.client("root") as root:
        everything = root.get("/v1/queries", params={"limit": 500}).json()["queries"]
        assert query_id in {q["query_id"] for q in everything}
        assert root.get(f"/v1/queries/{query_id}").status_code == 200
        assert root.get("/v1/queries", params={"limit": 0}).status_code == 400


def _refused(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "\n" not in body["detail"] and needle in body["detail"], body


def test_no_wrong_or_disabled_token_is_401_and_records_nothing(service: Service) -> None:
    before = service.recorded()
    body = {"sql": ALL_SQL, "project": "gi-bleed"}
    for client in (
        service.client(),
        service.client(token="not-a-token"),
        service.client(token=service.tokens["alice"] + "x"),
        service.client("carol"),
    ):
        with client:
            response = client.post("/v1/queries", json=body)
            _refused(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
            _refused(client.get("/v1/queries"), 401, "token")
            _refused(client.get("/v1/queries/anything"), 401, "token")
    with httpx.Client(base_url=service.url, headers={"Authorization": "Basic YWxpY2U6eA=="}) as basic:
        _refused(basic.post("/v1/queries", json=body), 401, "token")
    assert service.recorded() == before


def test_a_project_the_researcher_is_not_in_is_403(service: Service) -> None:
    before = service.recorded()
    with service.client("alice") as alice:
        _refused(alice.post("/v1/queries", json={"sql": ALL_SQL, "project": "other"}), 403, "other")
        _refused(alice.post("/v1/queries", json={"sql": ALL_SQL, "project": "nonexistent"}), 403, "member")
    with service.client("root") as root:  # administrators are members like everyone else
        _refused(root.post("/v1/queries", json={"sql": ALL_SQL, "project": "gi-bleed"}), 403, "member")
    assert service.recorded() == before


def test_someone_elses_query_is_404_like_an_unknown_one(service: Service) -> None:
    with service.client("alice") as alice:
        response = alice.post("/v1/queries", json={"sql": ALL_SQL, "project": "gi-bleed"})
        assert response.status_code == 202, response.text
        query_id = response.json()["query_id"]
    with service.client("bob") as bob:
        theirs = bob.get(f"/v1/queries/{query_id}")
        unknown = bob.get("/v1/queries/no-such-query")
    _refused(theirs, 404, "unknown query id")
    _refused(unknown, 404, "unknown query id")
    assert theirs.json() == unknown.json()


def test_an_oversized_body_is_413_and_records_nothing(service: Service) -> None:
    before = service.recorded()
    sql = ALL_SQL + " WHERE " + " OR ".join(["year_of_birth = 1950"] * 20000)
    assert len(sql) > 256 * 1024
    with service.client("alice") as alice:
        _refused(alice.post("/v1/queries", json={"sql": sql, "project": "gi-bleed"}), 413, "over")
        # the same without a Content-Length (chunked): counted while read
        chunks = iter([b'{"sql": "', sql.encode(), b'", "project": "gi-bleed"}'])
        _refused(alice.post("/v1/queries", content=chunks), 413, "over")
    assert service.recorded() == before


def test_sql_the_hub_refuses_and_bad_bodies_are_400_and_record_nothing(service: Service) -> None:
    before = service.recorded()
    with service.client("alice") as alice:
        refused = alice.post("/v1/queries", json={"sql": "DELETE FROM person", "project": "gi-bleed"})
        _refused(refused, 400, "query rejected at the hub")
        _refused(alice.post("/v1/queries", content=b"{not json"), 400, "invalid body")
        _refused(alice.post("/v1/queries", json={"project": "gi-bleed"}), 400, "sql")
        _refused(alice.post("/v1/queries", json={"sql": ALL_SQL, "project": "gi-bleed", "x": 1}), 400, "x")
        timeout = {"sql": ALL_SQL, "project": "gi-bleed", "timeout_s": 0}
        _refused(alice.post("/v1/queries", json=timeout), 400, "timeout_s")
        trusts = {"sql": ALL_SQL, "project": "gi-bleed", "trusts": ["t9"]}
        _refused(alice.post("/v1/queries", json=trusts), 400, "unknown trust")
    assert service.recorded() == before


def test_the_openapi_schema_and_health_are_served(service: Service) -> None:
    schema = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    assert {"/v1/queries", "/v1/queries/{query_id}", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/queries"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"sql", "project"} <= set(body["required"])
    assert httpx.get(f"{service.url}/healthz", timeout=10).json() == {"status": "ok"}


def test_numeric_statistics_through_the_service(service: Service) -> None:
    numeric = {"columns": ["year_of_birth"], "histograms": {}}
    with service.client("bob") as bob:
        response = bob.post("/v1/queries", json={"sql": ALL_SQL, "project": "gi-bleed", "numeric": numeric})
        assert response.status_code == 202, response.text
        report = _report(bob, response.json()["query_id"])
        assert report["status"] == "complete"
        assert report["federated"]["numeric"]["year_of_birth"]["n"] == report["federated"]["person_count"]
        before = service.recorded()
        wrong = {"sql": ALL_SQL, "project": "gi-bleed", "numeric": {"columns": ["nosuch"], "histograms": {}}}
        _refused(bob.post("/v1/queries", json=wrong), 400, "no output column")
    assert service.recorded() == before
