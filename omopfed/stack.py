"""A whole federation on one machine: Redis-compatible broker, one PostgreSQL per trust, workers, reducer.

Everything comes from pip-installed packages and listens on loopback with free ports. ``up`` returns once
every worker and the reducer consume their queues; ``down`` stops everything it started, by PID, and
removes what it created. The state lives in ``DIR/stack.json`` (0600: it holds database passwords), so
``down`` and ``info`` work from another process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omop.errors import OmopFedError, UsageError, first_invalid
from omop.keys import PRIVATE_MODE, write_new_file
from omop.states import PrivacyMode
from omopfed.broker_config import DEFAULT_MAXMEMORY, parse_maxmemory
from omopfed.localservices import EmbeddedPostgres, EmbeddedValkey, start_postgres, start_valkey
from omopfed.localservices.processes import log_tail, pid_alive, process_tree, stop_pid
from omopfed.trust_ids import trust_ids
from trust_worker.synthetic_data import check_persons

STATE_FILE = "stack.json"
ENV_FILE = "stack.env"
READY_TIMEOUT_S = 90.0

Progress = Callable[[str], None]


@dataclass
class TrustNode:
    trust_id: str
    dir: str
    postgres: dict[str, Any]
    reader_password: str
    env_file: str
    worker_pid: int | None = None

    def pg(self) -> EmbeddedPostgres:
        return EmbeddedPostgres.from_dict(self.postgres)

    @property
    def db_url(self) -> str:
        return self.pg().url("omop")

    @property
    def reader_url(self) -> str:
        return self.pg().url("omop", user="data_analyst_reader", password=self.reader_password)


@dataclass
class StackState:
    dir: str
    created_dir: bool
    valkey: dict[str, Any] | None = None
    hub_redis_url: str | None = None
    hub_store_url: str | None = None
    hub_keys_dir: str | None = None
    reducer_pid: int | None = None
    trusts: dict[str, TrustNode] = field(default_factory=dict)

    def save(self) -> None:
        data = asdict(self)
        _write_secret(Path(self.dir) / STATE_FILE, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> StackState:
        path = directory / STATE_FILE
        if not path.is_file():
            raise UsageError(f"no stack in {directory} (no {STATE_FILE}); start one with: omopfed stack up")
        try:
            data = json.loads(path.read_text())
            data["trusts"] = {k: TrustNode(**v) for k, v in data.get("trusts", {}).items()}
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise OmopFedError(f"{path} is damaged: {exc}") from exc

    def info(self) -> dict[str, Any]:
        return {
            "dir": self.dir,
            "redis_url": self.hub_redis_url,
            "hub_store_url": self.hub_store_url,
            "env_file": str(Path(self.dir) / ENV_FILE),
            "reducer_pid": self.reducer_pid,
            "trusts": {
                t.trust_id: {
                    "db_url": t.db_url,
                    "reader_url": t.reader_url,
                    "worker_pid": t.worker_pid,
                    "env_file": t.env_file,
                    "state_dir": str(Path(t.dir) / "state"),
                }
                for t in self.trusts.values()
            },
        }


def _write_secret(path: Path, text: str) -> None:
    write_new_file(path, text.encode(), PRIVATE_MODE, replace=path.exists())


def _env_text(values: dict[str, str]) -> str:
    return "".join(f"{k}={json.dumps(v)}\n" for k, v in values.items())


def _spawn(args: list[str], log: Path, env_file: Path, ready_file: Path) -> int:
    """Start an ``omopfed`` process detached from us (own session), output to ``log``."""
    ready_file.unlink(missing_ok=True)
    env = {**os.environ, "OMOPFED_READY_FILE": str(ready_file)}
    env = {k: v for k, v in env.items() if not k.startswith("OMOPFED_") or k == "OMOPFED_READY_FILE"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omopfed.cli", "--env-file", str(env_file), *args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def _wait_ready(items: list[tuple[str, int, Path, Path]], timeout: float) -> None:
    """Wait for every (name, pid, ready file, log) to be ready; a dead process fails at once, with its log."""
    deadline = time.monotonic() + timeout
    pending = list(items)
    while pending:
        for item in list(pending):
            name, pid, ready, log = item
            if ready.exists():
                pending.remove(item)
            elif not pid_alive(pid):
                raise OmopFedError(f"{name} exited during start-up: {log_tail(log)}")
        if pending and time.monotonic() > deadline:
            raise OmopFedError(f"{pending[0][0]} not ready after {timeout:.0f} s: {log_tail(pending[0][3])}")
        time.sleep(0.05)


def up(
    directory: Path,
    *,
    trusts: int = 3,
    persons: int | list[int] = 2000,
    eunomia: bool = False,
    broker_maxmemory: str = DEFAULT_MAXMEMORY,
    privacy: str = PrivacyMode.DP,
    epsilon: float | None = None,
    budget: float | None = None,
    progress: Progress = lambda _m: None,
) -> StackState:
    """Start a complete federation in ``directory``; on any failure, stop what was started and re-raise.

    ``persons`` is the synthetic population of every trust, or one figure per trust. ``broker_maxmemory``
    is the broker's memory limit (``omopfed.broker_config``). ``privacy`` (``dp`` or ``exact``), ``epsilon``
    (per query) and ``budget`` (per project) go into every trust's policy file (``[privacy]``).
    """
    policy_text = privacy_policy_text(privacy, epsilon, budget)
    ids = trust_ids(trusts)
    maxmemory = parse_maxmemory(broker_maxmemory)
    sizes = persons if isinstance(persons, list) else [persons] * trusts
    if len(sizes) != trusts:
        raise UsageError("give one population size per trust")
    if not eunomia:
        for size in sizes:
            check_persons(size)
    directory = directory.resolve()
    if (directory / STATE_FILE).exists():
        raise UsageError(
            f"a stack already exists in {directory}; stop it first: omopfed stack down --dir {directory}"
        )
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty; give a new or empty directory")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = StackState(dir=str(directory), created_dir=created)
    try:
        _build(state, ids, sizes, eunomia, maxmemory, policy_text, progress)
    except BaseException:
        progress("start-up failed; stopping what was started")
        down(state)
        raise
    return state


def privacy_policy_text(privacy: str, epsilon: float | None, budget: float | None) -> str:
    """The trust policy file a stack's trusts get: the ``[privacy]`` table, checked like any policy file."""
    import tomllib

    from pydantic import ValidationError

    from trust_worker.policy_file import PrivacyPolicy

    if privacy not in tuple(PrivacyMode):
        raise UsageError(f'--privacy must be "dp" or "exact", not {privacy!r}')
    if privacy == PrivacyMode.EXACT and (epsilon is not None or budget is not None):
        raise UsageError("--epsilon and --budget apply to --privacy dp only")
    lines = ["# written by omopfed stack up: the trust's privacy settings (docs/privacy.md)", "[privacy]"]
    lines.append(f'mode = "{privacy}"')
    if epsilon is not None:
        lines.append(f"epsilon_per_query = {float(epsilon)!r}")
    if budget is not None:
        lines.append(f"budget_per_project = {float(budget)!r}")
    text = "\n".join(lines) + "\n"
    try:
        PrivacyPolicy.model_validate(tomllib.loads(text)["privacy"])
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--privacy: {exc}") from None
    except ValidationError as exc:
        problem = first_invalid(exc)
        flag = {"epsilon_per_query": "--epsilon", "budget_per_project": "--budget"}.get(
            problem.where(""), "--privacy"
        )
        raise UsageError(f"{flag}: {problem.message}") from None
    return text


def _build(
    state: StackState,
    ids: list[str],
    sizes: list[int],
    eunomia: bool,
    maxmemory: str,
    policy_text: str,
    progress: Progress,
) -> None:
    from hub_broker.redis_acl import HUB_USER, password_file, trust_user, write_acl
    from omop.keys import (
        HUB_PUBLIC,
        generate_hub_keys,
        generate_trust_key,
        pin_hub,
        register_trust,
        trust_public_name,
    )
    from trust_worker.database_setup import init_db

    root = Path(state.dir)
    hub_dir = root / "hub"
    keys_dir = hub_dir / "keys"
    progress("keys: hub signing + encryption, one signing key per trust")
    generate_hub_keys(keys_dir)
    redis_dir = root / "redis"
    acl = write_acl(redis_dir / "acl", ids)
    hub_pw = password_file(redis_dir / "acl", HUB_USER).read_text().strip()
    progress(f"broker: embedded Valkey with AOF, maxmemory {maxmemory} (noeviction) and per-trust ACL users")
    valkey = start_valkey(
        redis_dir / "data",
        aclfile=acl,
        maxmemory=maxmemory,
        detach=True,
        ping_url=f"redis://{HUB_USER}:{hub_pw}@127.0.0.1:{{port}}/0",
    )
    state.valkey = valkey.to_dict()
    state.hub_redis_url = valkey.url(HUB_USER, hub_pw)
    state.hub_store_url = f"sqlite:///{hub_dir / 'hub.db'}"
    state.hub_keys_dir = str(keys_dir)
    state.save()
    hub_env = root / ENV_FILE
    _write_secret(
        hub_env,
        _env_text(
            {
                "OMOPFED_BROKER_URL": state.hub_redis_url,
                "OMOPFED_HUB_STORE_URL": state.hub_store_url,
                "OMOPFED_HUB_KEYS_DIR": str(keys_dir),
            }
        ),
    )

    for index, trust_id in enumerate(ids):
        tdir = root / "trusts" / trust_id
        persons = sizes[index]
        what = (
            f"Eunomia shard {index}/{len(ids)}"
            if eunomia
            else f"{persons} synthetic persons, seed {index + 1}"
        )
        progress(f"trust {trust_id}: PostgreSQL, schema, read-only role, {what}")
        pg = start_postgres(tdir / "pg", detach=True)
        reader_pw = secrets.token_urlsafe(18)
        node = TrustNode(
            trust_id=trust_id,
            dir=str(tdir),
            postgres=pg.to_dict(),
            reader_password=reader_pw,
            env_file=str(tdir / "trust.env"),
        )
        state.trusts[trust_id] = node
        state.save()
        _create_database(pg)
        init_db(node.db_url, reader_pw)
        _load_data(node.db_url, index, len(ids), persons, eunomia)
        trust_keys = tdir / "keys"
        generate_trust_key(trust_id, trust_keys)
        register_trust(keys_dir, trust_keys / trust_public_name(trust_id))
        pin_hub(trust_keys, keys_dir / HUB_PUBLIC)
        trust_pw = password_file(redis_dir / "acl", trust_user(trust_id)).read_text().strip()
        policy = tdir / "policy.toml"
        policy.write_text(policy_text)
        policy.chmod(0o600)
        _write_secret(
            Path(node.env_file),
            _env_text(
                {
                    "OMOPFED_TRUST_ID": trust_id,
                    "OMOPFED_BROKER_URL": valkey.url(trust_user(trust_id), trust_pw),
                    "OMOPFED_READER_DB_URL": node.reader_url,
                    "OMOPFED_KEYS_DIR": str(trust_keys),
                    "OMOPFED_STATE_DIR": str(tdir / "state"),
                    "OMOPFED_POLICY_FILE": str(policy),
                }
            ),
        )

    progress(f"processes: {len(ids)} trust worker(s) and the hub reducer")
    waits: list[tuple[str, int, Path, Path]] = []
    waits.append(_spawn_reducer(state))
    for node in state.trusts.values():
        waits.append(_spawn_worker(state, node.trust_id))
    state.save()
    _wait_ready(waits, READY_TIMEOUT_S)
    progress("ready")


def _spawn_worker(state: StackState, trust_id: str) -> tuple[str, int, Path, Path]:
    node = state.trusts[trust_id]
    ready = Path(node.dir) / "worker.ready"
    log = Path(state.dir) / "logs" / f"trust-{trust_id}.log"
    node.worker_pid = _spawn(["trust", "worker"], log, Path(node.env_file), ready)
    return (f"trust worker {trust_id}", node.worker_pid, ready, log)


def _spawn_reducer(state: StackState) -> tuple[str, int, Path, Path]:
    root = Path(state.dir)
    ready = root / "hub" / "reducer.ready"
    log = root / "logs" / "hub-reducer.log"
    state.reducer_pid = _spawn(["hub", "reducer"], log, root / ENV_FILE, ready)
    return ("hub reducer", state.reducer_pid, ready, log)


def start_reducer(state: StackState) -> None:
    """(Re)start the hub's reducer, as its supervisor would after a crash; returns once it consumes."""
    waits = [_spawn_reducer(state)]
    state.save()
    _wait_ready(waits, READY_TIMEOUT_S)


def start_worker(state: StackState, trust_id: str) -> None:
    """(Re)start one trust's worker, as its supervisor would after a crash; returns once it consumes."""
    if trust_id not in state.trusts:
        raise UsageError(f"no trust {trust_id!r} in this stack")
    waits = [_spawn_worker(state, trust_id)]
    state.save()
    _wait_ready(waits, READY_TIMEOUT_S)


def _create_database(pg: EmbeddedPostgres) -> None:
    from trust_worker.db import connect

    with connect(pg.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE omop")


def _load_data(db_url: str, index: int, count: int, persons: int, eunomia: bool) -> None:
    if eunomia:
        from trust_worker.eunomia_loader import load_eunomia

        load_eunomia(db_url, shard=(index, count))
    else:
        from trust_worker.synthetic_data import seed

        seed(db_url, persons=persons, seed=index + 1)


#: ``stack stop --signal`` names: TERM and INT stop gracefully, KILL at once, STOP freezes (``start`` thaws).
SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "KILL": signal.SIGKILL, "STOP": signal.SIGSTOP}


def services(state: StackState) -> list[str]:
    """What ``stack stop`` / ``stack start`` can act on."""
    names = ["broker", "reducer"]
    for trust_id in state.trusts:
        names += [f"worker-{trust_id}", f"db-{trust_id}"]
    return names


def _service_pid(state: StackState, service: str) -> int | None:
    if service == "broker":
        return int(state.valkey["pid"]) if state.valkey else None
    if service == "reducer":
        return state.reducer_pid
    kind, _, trust_id = service.partition("-")
    node = state.trusts.get(trust_id)
    if node is None or kind not in ("worker", "db"):
        raise UsageError(f"no service {service!r} in this stack (services: {', '.join(services(state))})")
    return node.worker_pid if kind == "worker" else int(node.postgres["pid"])


def stop_service(state: StackState, service: str, signal_name: str = "TERM") -> None:
    """Send one of ``SIGNALS`` to a service of the stack (the whole process group for a database)."""
    sig = SIGNALS.get(signal_name.upper().removeprefix("SIG"))
    if sig is None:
        raise UsageError(f"--signal must be one of {', '.join(SIGNALS)}, not {signal_name!r}")
    pid = _service_pid(state, service)
    if pid is None or not pid_alive(pid):
        raise UsageError(f"{service} is not running")
    if sig is signal.SIGSTOP:
        _signal_all(state, service, pid, sig)
        return
    _signal_all(state, service, pid, signal.SIGCONT)
    if service.startswith("db-"):
        stop_pid(pid, signal.SIGINT if sig is signal.SIGTERM else sig, timeout=20)
    else:
        stop_pid(pid, sig, timeout=20)


def _signal_all(state: StackState, service: str, pid: int, sig: int) -> None:
    """Signal a service's process, and for a database every backend too (each has a session of its own)."""
    for target in process_tree(pid) if service.startswith("db-") else [pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)


def start_service(state: StackState, service: str) -> None:
    """Thaw a frozen service, or start a stopped one again (same port, data and settings)."""
    pid = _service_pid(state, service)
    if pid is not None and pid_alive(pid):
        _signal_all(state, service, pid, signal.SIGCONT)
        return
    if service == "broker":
        assert state.valkey is not None
        from hub_broker.redis_acl import HUB_USER, password_file

        hub_pw = password_file(Path(state.dir) / "redis" / "acl", HUB_USER).read_text().strip()
        server = EmbeddedValkey.from_dict(state.valkey)
        server.restart(ping_url=f"redis://{HUB_USER}:{hub_pw}@127.0.0.1:{{port}}/0")
        state.valkey = server.to_dict()
    elif service == "reducer":
        start_reducer(state)
    elif service.startswith("worker-"):
        start_worker(state, service.removeprefix("worker-"))
    else:
        node = state.trusts[service.removeprefix("db-")]
        pg = node.pg()
        pg.restart()
        node.postgres = pg.to_dict()
    state.save()


def down(state: StackState, progress: Progress = lambda _m: None) -> None:
    """Stop every process of the stack (workers first, so nothing is mid-task when its database stops)."""
    for service in services(state):  # a frozen process must be able to act on the stop signal
        pid = _service_pid(state, service)
        if pid and pid_alive(pid):
            with contextlib.suppress(PermissionError):
                _signal_all(state, service, pid, signal.SIGCONT)
    for node in state.trusts.values():
        if node.worker_pid:
            stop_pid(node.worker_pid, signal.SIGTERM, timeout=15)
    if state.reducer_pid:
        stop_pid(state.reducer_pid, signal.SIGTERM, timeout=15)
    for node in state.trusts.values():
        node.pg().stop(remove=False)
    if state.valkey:
        EmbeddedValkey.from_dict(state.valkey).stop(remove=False)
    root = Path(state.dir)
    if state.created_dir:
        shutil.rmtree(root, ignore_errors=True)
    else:
        for child in root.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    progress(f"stopped and removed {root}")
