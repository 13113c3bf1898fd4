"""The deployments end-to-end tests run against, behind one interface, so the same assertions hold for each:

* ``local``: the processes of ``omopfed stack up`` (embedded Valkey and PostgreSQL, workers, reducer);
* ``compose``: the generated ``docker-compose.yml`` (``omopfed.compose``) built and started with Docker
  Compose; skipped, with the reason, when no Docker engine with the compose plugin answers.

A test sees the hub as its operator does: an env file for ``omopfed hub submit``, the broker URL of the hub's
ACL user, the hub store and the hub key directory. Trust databases are reached the way each deployment
allows (directly on loopback for ``local``; ``docker compose exec`` into the database container for
``compose``, whose trust networks are internal and publish nothing).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.protocol import CohortTask, new_query_id
from omopfed import compose as spec
from omopfed.trust_ids import trust_ids
from tests.cli_runner import hub_submit_json, run_omopfed

REPO_ROOT = Path(__file__).resolve().parents[2]
KINDS = ("local", "compose")
DOCKER_PROBE_TIMEOUT_S = 10.0


@dataclass
class Deployment(ABC):
    """A running federation as the tests use it. Subclasses say how to reach trust-side state."""

    kind: str
    trust_ids: list[str]
    hub_env_file: Path
    hub_redis_url: str
    hub_store_url: str
    hub_keys_dir: Path

    # -- what differs between deployments ----------------------------------------------------------------

    def trust_broker_url(self, trust_id: str) -> str:
        """The broker URL with trust ``trust_id``'s own credentials: what a compromised trust server has."""
        raise NotImplementedError

    def trust_admin_url(self, trust_id: str) -> str | None:
        """The trust database's owner URL when the test process can reach it (None: only from inside)."""
        return None

    @abstractmethod
    def count_persons(self, trust_id: str, sql: str) -> int:
        """Distinct persons of ``sql`` run directly on the trust's database as its owner (the reference)."""

    @abstractmethod
    def state_dir(self, trust_id: str) -> Path:
        """The trust worker's ledger and audit log, as a host directory."""

    @abstractmethod
    def stop_trust_database(self, trust_id: str) -> None: ...

    @abstractmethod
    def stop_trust_worker(self, trust_id: str) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    # -- shared operations -------------------------------------------------------------------------------

    def hub_settings(self) -> HubSettings:
        from omop.settings import load

        return load(
            HubSettings,
            broker_url=self.hub_redis_url,
            hub_store_url=self.hub_store_url,
            hub_keys_dir=self.hub_keys_dir,
        )

    def hub_store(self) -> HubStore:
        return HubStore(self.hub_store_url)

    def submit(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_omopfed("hub", "submit", "--env-file", str(self.hub_env_file), *args, timeout=timeout)

    def submit_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        return hub_submit_json(self.hub_env_file, *args)

    def publish_raw(self, trust_id: str, wire: dict[str, Any]) -> None:
        """Put a task message on a trust's queue, bypassing ``submit`` (forged/replayed/expired tasks)."""
        from hub_broker.celery_app import hub_app
        from omop.transport import TASK_NAME, trust_queue

        hub_app(self.hub_settings()).send_task(TASK_NAME, args=[wire], queue=trust_queue(trust_id))

    def signed_task(
        self,
        trust_id: str,
        sql: str,
        *,
        issued: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=5),
        key: Any = None,
    ) -> tuple[str, dict[str, Any]]:
        from omop.crypto import sign_task
        from omop.keys import load_hub_private

        qid = new_query_id()
        issued = issued or datetime.now(UTC)
        task = CohortTask(
            query_id=qid,
            trust_id=trust_id,
            sql=sql,
            project_id="tests",
            issued_at=issued,
            expires_at=issued + lifetime,
        )
        signing = key or load_hub_private(self.hub_keys_dir).signing
        return qid, sign_task(task, signing).to_wire()

    def register_query(self, query_id: str, trusts: list[str], timeout_s: float = 20) -> HubStore:
        store = self.hub_store()
        store.create_query(
            query_id=query_id,
            project_id="tests",
            sql="(published by a test)",
            trusts=trusts,
            threshold=10,
            deadline_at=datetime.now(UTC) + timedelta(seconds=timeout_s),
        )
        return store

    def audit_entries(self, trust_id: str) -> list[dict[str, Any]]:
        path = self.state_dir(trust_id) / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def ledger_path(self, trust_id: str) -> Path:
        return self.state_dir(trust_id) / "executed.sqlite"


def start(kind: str, directory: Path, *, persons: list[int], **privacy: Any) -> Deployment:
    """Start a deployment of ``kind`` with one trust per population in ``persons`` (t1, t2, …).

    Exact figures unless ``privacy`` says otherwise (``privacy="dp", epsilon=..., budget=...``): most
    tests compare released figures with the databases.
    """
    if kind == "local":
        return LocalDeployment.up(directory, persons, **privacy)
    if kind == "compose":
        return ComposeDeployment.up(directory, persons)
    raise ValueError(f"unknown deployment kind {kind!r}")


def running(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    persons: list[int],
    **privacy: Any,
) -> Iterator[Deployment]:
    """Body of a module-scoped fixture parametrized over ``KINDS``: start, yield, always stop."""
    kind = str(request.param)
    directory = tmp_path_factory.mktemp(f"{name}-{kind}") / "federation"
    deployment = start(kind, directory, persons=persons, **privacy)
    try:
        yield deployment
    finally:
        deployment.down()


# -- local: omopfed stack --------------------------------------------------------------------------------


@dataclass
class LocalDeployment(Deployment):
    state: Any = None  # omopfed.stack.StackState

    @classmethod
    def up(cls, directory: Path, persons: list[int], **privacy: Any) -> LocalDeployment:
        from omopfed import stack as stack_mod

        settings = {"privacy": "exact", **privacy}
        state = stack_mod.up(directory, trusts=len(persons), persons=persons, **settings)
        return cls(
            kind="local",
            trust_ids=list(state.trusts),
            hub_env_file=Path(state.dir) / stack_mod.ENV_FILE,
            hub_redis_url=state.hub_redis_url or "",
            hub_store_url=state.hub_store_url or "",
            hub_keys_dir=Path(state.hub_keys_dir or ""),
            state=state,
        )

    def trust_admin_url(self, trust_id: str) -> str:
        return str(self.state.trusts[trust_id].db_url)

    def trust_broker_url(self, trust_id: str) -> str:
        for line in Path(self.state.trusts[trust_id].env_file).read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == "OMOPFED_BROKER_URL":
                return value.strip().strip('"')
        raise AssertionError(f"no broker URL in trust {trust_id}'s env file")

    def count_persons(self, trust_id: str, sql: str) -> int:
        import psycopg

        with psycopg.connect(self.trust_admin_url(trust_id)) as conn:
            conn.execute("SET search_path = omop")
            row = conn.execute(f"SELECT count(DISTINCT person_id) FROM ({sql}) c").fetchone()
        assert row is not None
        return int(row[0])

    def state_dir(self, trust_id: str) -> Path:
        return Path(self.state.trusts[trust_id].dir) / "state"

    def stop_trust_database(self, trust_id: str) -> None:
        self._reload().trusts[trust_id].pg().stop(remove=False)

    def _reload(self) -> Any:
        """The stack's state as on disk: ``omopfed stack start`` (run by a test) records new PIDs there."""
        from omopfed import stack as stack_mod

        self.state = stack_mod.StackState.load(Path(self.state.dir))
        return self.state

    def stop_trust_worker(self, trust_id: str) -> None:
        from omopfed.localservices.processes import stop_pid

        pid = self._reload().trusts[trust_id].worker_pid
        assert pid is not None
        stop_pid(pid, signal.SIGTERM)

    def kill_trust_worker(self, trust_id: str) -> None:
        """SIGKILL, wherever the worker is: no chance to ack, reject or clean up."""
        from omopfed.localservices.processes import stop_pid

        pid = self._reload().trusts[trust_id].worker_pid
        assert pid is not None
        stop_pid(pid, signal.SIGKILL)

    def start_trust_worker(self, trust_id: str) -> None:
        from omopfed import stack as stack_mod

        stack_mod.start_worker(self._reload(), trust_id)

    def kill_reducer(self) -> None:
        from omopfed.localservices.processes import stop_pid

        pid = self._reload().reducer_pid
        assert pid is not None
        stop_pid(pid, signal.SIGKILL)

    def start_reducer(self) -> None:
        from omopfed import stack as stack_mod

        stack_mod.start_reducer(self._reload())

    def down(self) -> None:
        from omopfed import stack as stack_mod

        stack_mod.down(self._reload())


# -- compose: the generated docker-compose.yml -------------------------------------------------------------


def _run(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env={**os.environ, **(env or {})}
    )


@cache
def docker_unavailable_reason() -> str | None:
    """None when a Docker engine and the compose plugin answer; else why not (the skip reason)."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        engine = _run(["docker", "info", "--format", "{{.ServerVersion}}"], DOCKER_PROBE_TIMEOUT_S)
        if engine.returncode != 0:
            last = (engine.stderr.strip().splitlines() or ["no answer"])[-1]
            return f"no Docker engine: {last}"
        plugin = _run(["docker", "compose", "version"], DOCKER_PROBE_TIMEOUT_S)
        if plugin.returncode != 0:
            return "the docker compose plugin is not installed"
    except subprocess.TimeoutExpired:
        return f"docker did not answer within {DOCKER_PROBE_TIMEOUT_S:.0f} s"
    return None


TEST_OVERRIDE = {
    # Test harness only: the hub store on loopback, so the tests can read it as the hub operator would on
    # the hub host. The deployment itself publishes nothing but Redis.
    "services": {"hub-db": {"ports": ["127.0.0.1::5432"], "networks": ["hub-store", "hub"]}}
}


@dataclass
class ComposeDeployment(Deployment):
    directory: Path = field(default_factory=Path)
    project: str = ""
    compose_env: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(self.directory / "docker-compose.yml"), "-f", str(self.directory / "test.yml")]
        return _run(["docker", "compose", "-p", self.project, *files, *args], timeout, self.compose_env)

    def compose_ok(self, *args: str, timeout: float = 120) -> str:
        proc = self.compose(*args, timeout=timeout)
        assert proc.returncode == 0, f"docker compose {' '.join(args)} failed: {proc.stderr[-2000:]}"
        return proc.stdout

    @classmethod
    def up(cls, directory: Path, persons: list[int]) -> ComposeDeployment:
        import pytest

        from hub_broker.redis_acl import HUB_USER, password_file
        from omopfed.compose_secrets import generate, postgres_url, redis_url
        from omopfed.localservices.processes import free_port

        reason = docker_unavailable_reason()
        if reason is not None:
            pytest.skip(f"compose deployment: {reason}")
        ids = trust_ids(len(persons))
        directory.mkdir(parents=True, exist_ok=True)
        doc = spec.compose_config(ids, persons=persons, build_context=str(REPO_ROOT))
        (directory / "docker-compose.yml").write_text(spec.to_yaml(doc))
        (directory / "test.yml").write_text(spec.to_yaml(TEST_OVERRIDE))
        generate(directory, ids)
        fed = directory / spec.GENERATED_DIR
        for trust_id in ids:  # these tests compare figures with the databases: exact mode
            policy = directory / spec.policy_file(trust_id)
            policy.write_text(policy.read_text().replace('mode = "dp"', 'mode = "exact"'))
        redis_port = free_port()
        dep = cls(
            kind="compose",
            trust_ids=ids,
            hub_env_file=directory / "hub.env",
            hub_redis_url="",
            hub_store_url="",
            hub_keys_dir=fed / "keys" / "hub",
            directory=directory,
            project=f"omopfed-test-{secrets.token_hex(4)}",
            compose_env={"OMOPFED_REDIS_BIND": "127.0.0.1", "OMOPFED_REDIS_PORT": str(redis_port)},
        )
        try:
            dep.compose_ok("up", "--detach", "--build", timeout=1800)
            dep.wait_healthy(ids, timeout=600)
            _host, _, store_port = dep.compose_ok("port", "hub-db", "5432").strip().rpartition(":")
            hub_pw = password_file(fed / "redis", HUB_USER).read_text().strip()
            db_pw = (fed / "secrets" / "hub-db.password").read_text().strip()
            dep.hub_redis_url = redis_url(HUB_USER, hub_pw, tls=False, host="127.0.0.1", port=redis_port)
            dep.hub_store_url = postgres_url(
                spec.HUB_DB_USER, db_pw, "127.0.0.1", spec.HUB_DB_NAME, port=int(store_port), driver="psycopg"
            )
            dep.hub_env_file.write_text(
                f'OMOPFED_BROKER_URL="{dep.hub_redis_url}"\nOMOPFED_HUB_STORE_URL="{dep.hub_store_url}"\n'
                f'OMOPFED_HUB_KEYS_DIR="{dep.hub_keys_dir}"\n'
            )
            dep.hub_env_file.chmod(0o600)
        except BaseException:
            dep.down()
            raise
        return dep

    def trust_broker_url(self, trust_id: str) -> str:
        from hub_broker.redis_acl import password_file, trust_user
        from omopfed.compose_secrets import redis_url

        user = trust_user(trust_id)
        pw = password_file(self.directory / spec.GENERATED_DIR / "redis", user).read_text().strip()
        port = int(self.compose_env["OMOPFED_REDIS_PORT"])
        return redis_url(user, pw, tls=False, host="127.0.0.1", port=port)

    def _states(self) -> dict[str, dict[str, Any]]:
        out = self.compose_ok("ps", "--all", "--format", "json").strip()
        rows: list[dict[str, Any]] = []
        if out.startswith("["):
            rows = json.loads(out)
        else:
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def wait_healthy(self, ids: list[str], timeout: float) -> None:
        long_running = [
            "redis",
            "hub-db",
            "hub-reducer",
            *(spec.db_service(t) for t in ids),
            *(spec.worker_service(t) for t in ids),
        ]
        deadline = time.monotonic() + timeout
        while True:
            states = self._states()
            for name in (spec.init_service(t) for t in ids):
                row = states.get(name, {})
                if row.get("State") == "exited" and row.get("ExitCode", 0) != 0:
                    logs = self.compose("logs", "--no-color", "--tail", "20", name).stdout
                    raise AssertionError(f"{name} failed: {logs}")
            if all(states.get(s, {}).get("Health") == "healthy" for s in long_running):
                return
            if time.monotonic() > deadline:
                waiting = [s for s in long_running if states.get(s, {}).get("Health") != "healthy"]
                logs = self.compose("logs", "--no-color", "--tail", "20", *waiting).stdout
                raise AssertionError(f"not healthy after {timeout:.0f} s: {waiting}\n{logs}")
            time.sleep(2)

    def count_persons(self, trust_id: str, sql: str) -> int:
        query = f"SELECT count(DISTINCT person_id) FROM ({sql}) c"
        out = self.compose_ok(
            "exec",
            "-T",
            spec.db_service(trust_id),
            "psql",
            "-U",
            spec.OMOP_DB_OWNER,
            "-d",
            spec.OMOP_DB_NAME,
            "-qtA",
            "-c",
            "SET search_path = omop",
            "-c",
            query,
        )
        return int(out.strip().splitlines()[-1])

    def state_dir(self, trust_id: str) -> Path:
        return self.directory / spec.state_dir(trust_id).removeprefix("./")

    def stop_trust_database(self, trust_id: str) -> None:
        self.compose_ok("stop", spec.db_service(trust_id))

    def stop_trust_worker(self, trust_id: str) -> None:
        self.compose_ok("stop", spec.worker_service(trust_id))

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300)
