"""The compose deployment without a Docker engine: the files' invariants, the generated secrets, TLS, and the
generated material run as plain processes on embedded servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from omopfed import compose as spec
from omopfed.compose_secrets import generate
from omopfed.trust_ids import trust_ids
from tests.cli_runner import assert_no_traceback, assert_one_line_error, run_omopfed

REPO = Path(__file__).resolve().parents[2]
READER = "data_analyst_reader"
HUB_SERVICES = {"redis", "hub-db", "hub-reducer", "hub-cli", "flower"}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|_URL$|CREDENTIAL", re.IGNORECASE)


def load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def generated(n: int) -> dict[str, Any]:
    ids = trust_ids(n)
    return load(spec.to_yaml(spec.compose_config(ids), spec.compose_header(ids)))


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("repo", load((REPO / "docker-compose.yml").read_text())),
        *((f"{n} trusts", generated(n)) for n in (1, 2, 5)),
    ]


def trust_ids_of(doc: dict[str, Any]) -> list[str]:
    return [
        name.removeprefix("trust-worker-") for name in doc["services"] if name.startswith("trust-worker-")
    ]


def networks_of(service: dict[str, Any]) -> list[str]:
    nets = service.get("networks", [])
    return list(nets) if isinstance(nets, dict | list) else []


def members(doc: dict[str, Any], network: str) -> set[str]:
    return {name for name, svc in doc["services"].items() if network in networks_of(svc)}


def long_running(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that stay up: not one-shot jobs (restart "no") and not run-on-demand (profile cli)."""
    return {
        name: svc
        for name, svc in doc["services"].items()
        if svc.get("restart") != "no" and "cli" not in svc.get("profiles", [])
    }


def secret_sources(service: dict[str, Any]) -> set[str]:
    return {s["source"] if isinstance(s, dict) else s for s in service.get("secrets", [])}


# -- the checked-in files are the generator's output ------------------------------------------------------


def test_checked_in_compose_file_is_the_generator_output() -> None:
    ids = trust_ids(2)
    expected = spec.to_yaml(spec.compose_config(ids, build_context="."), spec.compose_header(ids))
    assert (REPO / "docker-compose.yml").read_text() == expected, "regenerate: omopfed compose --trusts 2"


def test_checked_in_tls_override_is_the_generator_output() -> None:
    ids = trust_ids(2)
    expected = spec.to_yaml(spec.tls_override_config(ids), spec.compose_header(ids, tls=True))
    assert (REPO / "docker-compose.tls.yml").read_text() == expected, (
        "regenerate: omopfed compose --trusts 2 --tls"
    )


def test_cli_prints_the_same_document_as_the_generator(tmp_path: Path) -> None:
    proc = run_omopfed("compose", "--trusts", "5", "--no-build")
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    ids = trust_ids(5)
    assert load(proc.stdout) == load(spec.to_yaml(spec.compose_config(ids, build_context=None)))


# -- invariants, on the checked-in file and on generated ones ---------------------------------------------


@pytest.fixture(params=documents(), ids=lambda d: d[0])
def doc(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param[1])


def test_trust_databases_are_reachable_only_from_their_own_trust(doc: dict[str, Any]) -> None:
    ids = trust_ids_of(doc)
    assert ids
    for trust_id in ids:
        db = doc["services"][spec.db_service(trust_id)]
        network = spec.trust_network(trust_id)
        assert networks_of(db) == [network]
        assert doc["networks"][network].get("internal") is True
        allowed = {spec.db_service(trust_id), spec.init_service(trust_id), spec.worker_service(trust_id)}
        assert members(doc, network) <= allowed, "a hub service or another trust joined a trust network"
        assert not members(doc, network) & HUB_SERVICES
    # and no trust database is on any network another service shares, except its own trust network
    for name, svc in doc["services"].items():
        if name.startswith("omop-db-"):
            for net in networks_of(svc):
                assert net.startswith("trust-") and doc["networks"][net].get("internal") is True


def test_hub_store_sits_on_an_internal_network_of_hub_services_only(doc: dict[str, Any]) -> None:
    assert networks_of(doc["services"]["hub-db"]) == ["hub-store"]
    assert doc["networks"]["hub-store"]["internal"] is True
    assert members(doc, "hub-store") <= {"hub-db", "hub-reducer", "hub-cli"}


def test_workers_reach_redis_on_the_hub_network(doc: dict[str, Any]) -> None:
    for trust_id in trust_ids_of(doc):
        worker = doc["services"][spec.worker_service(trust_id)]
        assert set(networks_of(worker)) == {spec.trust_network(trust_id), "hub"}
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert networks_of(doc["services"]["redis"]) == ["hub"]


def test_only_redis_publishes_a_port(doc: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in doc["services"].items() if svc.get("ports")}
    monitoring = {n for n, s in doc["services"].items() if "monitoring" in s.get("profiles", [])}
    assert set(published) - monitoring == {"redis"}
    assert published["redis"] == ["${OMOPFED_REDIS_BIND:-127.0.0.1}:${OMOPFED_REDIS_PORT:-6379}:6379"]
    for name in monitoring & set(published):  # a dashboard, if any, only on the host's loopback
        assert all(str(p).startswith("127.0.0.1:") for p in published[name])
    for name, svc in doc["services"].items():
        if "db" in name:
            assert "ports" not in svc and "expose" not in svc


def test_every_long_running_service_has_a_healthcheck(doc: dict[str, Any]) -> None:
    services = long_running(doc)
    assert {"redis", "hub-db", "hub-reducer", "flower"} <= set(services)
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and check["test"] and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert svc["restart"] == "unless-stopped", name
    for trust_id in trust_ids_of(doc):
        worker = services[spec.worker_service(trust_id)]
        # healthy while the heartbeat refreshes OMOPFED_READY_FILE, on a tmpfs that a restart empties
        test = worker["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        assert repr(worker["environment"]["OMOPFED_READY_FILE"]) in test[3]
        assert "/tmp" in worker["tmpfs"]
        assert (
            worker["depends_on"][spec.init_service(trust_id)]["condition"] == "service_completed_successfully"
        )


def test_redis_persists_refuses_eviction_and_loads_the_acl_file(doc: dict[str, Any]) -> None:
    redis = doc["services"]["redis"]
    command = redis["command"]
    args = dict(zip(command[1::2], command[2::2], strict=True))
    assert args["--appendonly"] == "yes"
    assert args["--appendfsync"] == "everysec"
    assert args["--maxmemory"] == "256mb"  # the default: omopfed compose --broker-maxmemory changes it
    assert args["--maxmemory-policy"] == "noeviction"
    assert args["--enable-debug-command"] == args["--enable-module-command"] == "no"
    acl = args["--aclfile"]
    mounted = {c["target"]: c["source"] for c in redis["configs"]}
    assert doc["configs"][mounted[acl]]["file"] == "./federation/redis/users.acl"
    assert any(v.endswith(":/data") for v in redis["volumes"])


@pytest.mark.parametrize(("service", "stale_after_s"), [("hub-reducer", 15), ("trust-worker-t1", 150)])
def test_health_means_a_fresh_ready_file(tmp_path: Path, service: str, stale_after_s: int) -> None:
    import os
    import subprocess
    import sys
    import time

    doc = spec.compose_config(trust_ids(1))
    test = doc["services"][service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    ready = tmp_path / "ready"
    body = test[3].replace(repr(spec.READY_FILE), repr(str(ready)))

    def healthy() -> bool:
        return subprocess.run([sys.executable, "-c", body], check=False).returncode == 0

    assert not healthy()  # never written
    ready.write_text("ready\n")
    assert healthy()
    recent = time.time() - stale_after_s + 5
    os.utime(ready, (recent, recent))
    assert healthy()
    stale = time.time() - stale_after_s - 5
    os.utime(ready, (stale, stale))
    assert not healthy()  # written once, long ago: a process that stopped consuming


def test_workers_get_longer_to_stop_than_the_longest_default_statement(doc: dict[str, Any]) -> None:
    from trust_worker.policy_file import TrustPolicy

    workers = {name: svc for name, svc in doc["services"].items() if name.startswith("trust-worker-")}
    assert workers
    for name, service in workers.items():
        grace = service.get("stop_grace_period", "10s")
        assert grace.endswith("s") and int(grace[:-1]) > TrustPolicy().statement_timeout_s + 30, name


def test_no_secret_is_inline(doc: dict[str, Any]) -> None:
    for name, svc in doc["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRETISH.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} must come from a file"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
            assert "@" not in str(value) and "://" not in str(value), f"{name}: {key} holds a URL"
        for arg in [*svc.get("command", []), *svc.get("entrypoint", [])]:
            assert not re.search(r"://[^/\s]*:[^@\s]*@", str(arg)), f"{name}: credentials in a command"
    for secret in doc["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("./federation/")


def test_no_generated_password_appears_in_the_yaml(tmp_path: Path) -> None:
    ids = trust_ids(2)
    generate(tmp_path, ids)
    text = (REPO / "docker-compose.yml").read_text()
    values = [
        p.read_text().strip()
        for p in (tmp_path / "federation").rglob("*")
        if p.is_file() and (p.suffix == ".password" or p.name.endswith("-password"))
    ]
    assert len(values) >= 3 * len(ids)
    assert not [v for v in values if v in text]


def test_trust_networks_are_internal(doc: dict[str, Any]) -> None:
    nets = [n for n in doc["networks"] if n.startswith("trust-")]
    assert len(nets) == len(trust_ids_of(doc))
    assert all(doc["networks"][n] == {"internal": True} for n in nets)


def test_workers_connect_as_the_reader_with_their_own_trust_secrets_only(doc: dict[str, Any]) -> None:
    for trust_id in trust_ids_of(doc):
        worker = doc["services"][spec.worker_service(trust_id)]
        env = worker["environment"]
        assert "OMOPFED_READER_DB_URL_FILE" in env and not any(k.startswith("OMOPFED_DB_URL") for k in env)
        sources = secret_sources(worker)
        assert f"{trust_id}_reader_db_url" in sources
        assert all(s.startswith(f"{trust_id}_") for s in sources), (
            sources
        )  # nothing of the hub or other trusts
        assert (
            not {f"{trust_id}_db_url", f"{trust_id}_db_password"} & sources
        )  # never the owner's credentials
        assert env["OMOPFED_TRUST_ID"] == trust_id


def test_hub_side_never_holds_trust_credentials(doc: dict[str, Any]) -> None:
    for name in ("hub-reducer", "hub-cli", "flower"):
        sources = secret_sources(doc["services"][name])
        # the hub's own secrets, and trusts' *public* keys (its registry): nothing a trust keeps secret
        others = {s for s in sources if not s.startswith("hub_") and s != "flower_password"}
        assert all(s.endswith("_public_key") for s in others), (name, others)
    assert secret_sources(doc["services"]["flower"]) == {"hub_broker_url", "flower_password"}


def test_images_are_pinned(doc: dict[str, Any]) -> None:
    for name, svc in doc["services"].items():
        image = svc["image"]
        repo, _, tag = image.partition("@")[0].rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image}"


def test_our_containers_run_unprivileged(doc: dict[str, Any]) -> None:
    for name, svc in doc["services"].items():
        assert "no-new-privileges:true" in svc["security_opt"], name
        if svc["image"].startswith(f"{spec.IMAGE_NAME}:"):
            assert svc["user"] == spec.RUN_AS and svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert svc.get("privileged") is not True


# -- the Dockerfile ---------------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    lines = [ln.strip() for ln in (REPO / "Dockerfile").read_text().splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_with_a_slim_pinned_base() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = dockerfile_stages()
    assert len(stages) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert "latest" not in text
    final = stages[-1]
    assert any(ln.startswith("COPY --from=build ") for ln in final)


def test_dockerfile_final_stage_runs_as_non_root_without_build_tools() -> None:
    final = dockerfile_stages()[-1]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    joined = "\n".join(final)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "make "):
        assert tool not in joined, tool
    assert '"omopfed"' in joined  # ENTRYPOINT: the same image runs every omopfed command


def test_dockerignore_keeps_generated_secrets_out_of_the_build() -> None:
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip()]
    rules = [ln for ln in lines if not ln.startswith("#")]
    assert rules[0] == "*"  # deny by default, then name what the build needs
    assert not [r for r in rules if r.startswith("!") and ("federation" in r or r == "!.env")]
    for copied in ("omop/", "trust_worker/", "hub_broker/", "omopfed/", "deploy/trust-init.sh"):
        assert f"!{copied}" in rules


# -- the command's bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--trusts", "0"], 2, "--trusts must be between 1 and 64"),
        (["--trusts", "1000"], 2, "--trusts must be between 1 and 64"),
        (["--trusts", "2", "--persons", "-5"], 2, "cannot be negative"),
        (["--trusts", "x"], 2, "--trusts"),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], code: int, message: str) -> None:
    proc = run_omopfed("compose", *args)
    assert_no_traceback(proc)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "--broker-maxmemory must be a size such as 256mb or 2gb"),
        ("1.5gb", "--broker-maxmemory must be a size such as 256mb or 2gb"),
        ("-1gb", "--broker-maxmemory must be a size such as 256mb or 2gb"),
        ("0", "--broker-maxmemory 0 is too small"),
        ("2000gb", "--broker-maxmemory 2000gb is too large"),
    ],
)
def test_bad_broker_maxmemory_is_a_one_line_error(tmp_path: Path, value: str, message: str) -> None:
    proc = run_omopfed("compose", "--trusts", "2", "--broker-maxmemory", value, "--out", tmp_path / "dep")
    assert_one_line_error(proc, 2, message)
    assert proc.stdout == ""
    assert not (tmp_path / "dep").exists()


def test_broker_maxmemory_sets_both_files_and_the_header_says_how(tmp_path: Path) -> None:
    out = tmp_path / "dep"
    (out).mkdir()
    (out / ".env").write_text("OMOPFED_REDIS_MAXMEMORY=4gb\n")  # read by compose files from before the flag
    proc = run_omopfed("compose", "--trusts", "2", "--tls", "--broker-maxmemory", "2GB", "--out", out)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "OMOPFED_REDIS_MAXMEMORY" in proc.stderr and "no longer reads" in proc.stderr
    for name in (spec.COMPOSE_FILE, spec.TLS_OVERRIDE_FILE):
        text = (out / name).read_text()
        assert "--broker-maxmemory 2gb" in text.splitlines()[0], name
        command = load(text)["services"]["redis"]["command"]
        assert command[command.index("--maxmemory") + 1] == "2gb", name
    printed = run_omopfed("compose", "--trusts", "2", "--no-build", "--broker-maxmemory", "512mb")
    assert printed.returncode == 0, printed.stderr
    expected = spec.compose_config(trust_ids(2), build_context=None, broker_maxmemory="512mb")
    assert load(printed.stdout) == load(spec.to_yaml(expected))


def test_unwritable_out_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    for out in (blocker / "deployment", Path("/proc/omopfed-compose-test")):
        proc = run_omopfed("compose", "--trusts", "2", "--out", str(out))
        assert_no_traceback(proc)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: cannot") and proc.stderr.count("\n") == 1, proc.stderr
        assert not (blocker / "deployment").exists()


# -- the explicit step: what --out writes ------------------------------------------------------------------


def test_out_writes_compose_file_keys_acl_and_secrets(tmp_path: Path) -> None:
    from omop.keys import load_hub_private, load_pinned_hub, load_trust_private, load_trust_registry

    out = tmp_path / "deployment"
    proc = run_omopfed("compose", "--trusts", "2", "--out", str(out), "--persons", "50")
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    doc = load((out / "docker-compose.yml").read_text())
    assert doc["services"]["omop-init-t2"]["environment"]["OMOPFED_SEED_PERSONS"] == "50"
    fed = out / "federation"
    for name, secret in doc["secrets"].items():  # every secret the YAML names exists
        assert (out / secret["file"]).is_file(), name
    for name, config in doc["configs"].items():
        assert (out / config["file"]).is_file(), name
    hub = load_hub_private(fed / "keys" / "hub").public()
    assert set(load_trust_registry(fed / "keys" / "hub")) == {"t1", "t2"}
    for trust_id in ("t1", "t2"):
        pinned = load_pinned_hub(fed / "keys" / trust_id)
        assert (pinned.signing_key_id, pinned.encryption_key_id) == (
            hub.signing_key_id,
            hub.encryption_key_id,
        )
        key = load_trust_private(fed / "keys" / trust_id, trust_id)
        assert load_trust_registry(fed / "keys" / "hub")[trust_id] == key.public_key()
        reader = (fed / "secrets" / f"{trust_id}.reader-db-url").read_text().strip()
        password = (fed / "secrets" / f"{trust_id}.reader-password").read_text().strip()
        assert reader == f"postgresql://{READER}:{password}@omop-db-{trust_id}:5432/omop"
        broker = (fed / "secrets" / f"{trust_id}.broker-url").read_text().strip()
        redis_pw = (fed / "redis" / f"trust-{trust_id}.redis-password").read_text().strip()
        assert broker == f"redis://trust-{trust_id}:{redis_pw}@redis:6379/0"
    for path in (fed / "secrets").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    acl = (fed / "redis" / "users.acl").read_text().splitlines()
    assert acl[0].startswith("user default off") and "nopass" not in "\n".join(acl)
    assert {ln.split()[1] for ln in acl} == {"default", "hub", "trust-t1", "trust-t2"}
    env = dict(
        ln.split("=", 1) for ln in (out / ".env").read_text().splitlines() if "=" in ln and ln[0] != "#"
    )
    expected_uid = os.getuid() or 10001
    assert env["OMOPFED_UID"] == str(expected_uid)
    assert fed.stat().st_uid == expected_uid


def test_rerun_keeps_passwords_and_keys_and_adds_trusts(tmp_path: Path) -> None:
    generate(tmp_path, ["t1", "t2"])
    fed = tmp_path / "federation"
    before = {
        p: p.read_bytes() for p in fed.rglob("*") if p.is_file() and not p.name.endswith(("url", ".acl"))
    }
    (fed / "policies" / "t1.toml").write_text("threshold = 20\n")  # a governance team's edit
    generate(tmp_path, ["t1", "t2", "t3"])
    for path, data in before.items():
        if path.name != "t1.toml":
            assert path.read_bytes() == data, f"{path} changed on re-run"
    assert (fed / "policies" / "t1.toml").read_text() == "threshold = 20\n"
    assert (fed / "keys" / "hub" / "trusts" / "t3.pub.json").is_file()
    assert "user trust-t3 " in (fed / "redis" / "users.acl").read_text()


# -- TLS: the generated URLs verify the broker ------------------------------------------------------------


def tls_redis_server() -> str | None:
    """A redis-server/valkey-server on PATH built with TLS, or None."""
    for name in ("valkey-server", "redis-server"):
        path = shutil.which(name)
        if path and "libssl" in subprocess.run(["ldd", path], capture_output=True, text=True).stdout:
            return path
    return None


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    from omopfed.localservices.processes import free_port

    server = tls_redis_server()
    if server is None:
        pytest.skip("no redis-server/valkey-server with TLS support on PATH")
    generate(tmp_path, ["t1"], tls=True, redis_hosts=["hub.example.org"])
    tls = tmp_path / "federation" / "tls"
    port = free_port()
    args = [
        server,
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(tls / "redis.crt"),
        "--tls-key-file",
        str(tls / "redis.key"),
        "--tls-ca-cert-file",
        str(tls / "ca.crt"),
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        import socket

        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"{server} did not start with TLS")
                time.sleep(0.05)
        yield tmp_path, port
    finally:
        proc.terminate()
        proc.wait(10)


def local_url(url: str, port: int, ca: Path) -> str:
    return url.replace("@redis:6379", f"@localhost:{port}").replace(spec.REDIS_CA_TARGET, str(ca))


def test_tls_urls_require_a_verified_certificate(tls_broker: tuple[Path, int]) -> None:
    import redis
    from kombu.connection import Connection

    root, port = tls_broker
    fed = root / "federation"
    url = (fed / "secrets" / "t1.broker-url.tls").read_text().strip()
    assert url.startswith("rediss://trust-t1:") and "ssl_cert_reqs=required" in url
    ca = fed / "tls" / "ca.crt"
    # the broker has no ACL file here: the default user answers PING, which is all TLS needs
    anonymous = re.sub(r"//[^@]*@", "//", local_url(url, port, ca))
    assert redis.Redis.from_url(anonymous).ping() is True
    with Connection(anonymous, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)

    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import serialization

    from omopfed.compose_tls import make_ca

    _key, other = make_ca(datetime.now(UTC))
    stranger = root / "other-ca.crt"
    stranger.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis.Redis.from_url(anonymous.replace(str(ca), str(stranger))).ping()
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):  # a name not in the cert
        redis.Redis.from_url(
            anonymous.replace("@localhost:", "@127.0.0.2:").replace("//localhost:", "//127.0.0.2:")
        ).ping()


def test_tls_certificate_names_and_renewal(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from omopfed.compose_tls import certificate_names

    generate(tmp_path, ["t1"], tls=True)
    tls = tmp_path / "federation" / "tls"
    first = x509.load_pem_x509_certificate((tls / "redis.crt").read_bytes())
    assert certificate_names(first) >= {"redis", "localhost", "127.0.0.1"}
    ca = (tls / "ca.crt").read_bytes()
    generate(tmp_path, ["t1"], tls=True)  # same names: nothing replaced
    assert (tls / "redis.crt").read_bytes() == first.public_bytes(serialization.Encoding.PEM)
    generate(tmp_path, ["t1"], tls=True, redis_hosts=["hub.example.org", "192.0.2.7"])
    again = x509.load_pem_x509_certificate((tls / "redis.crt").read_bytes())
    assert certificate_names(again) >= {"redis", "hub.example.org", "192.0.2.7"}
    assert (tls / "ca.crt").read_bytes() == ca  # trusts pinned the CA: it is never replaced
    assert stat.S_IMODE((tls / "ca.key").stat().st_mode) == 0o600


# -- the generated material, run as the containers would run it (no Docker) -------------------------------


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.stack  # embedded servers whatever OMOPFED_TEST_* says: not for the system-server CI pass
def test_generated_deployment_runs_end_to_end_as_processes(tmp_path: Path) -> None:
    """Every service of the compose file for one trust, started as a process with the environment the
    compose file gives it (``*_FILE`` secrets, key directories, policy, state), on embedded servers standing
    in for the ``redis``/``hub-db``/``omop-db-t1`` containers. Only host names and ports are rewritten."""
    import psycopg

    from omopfed.localservices import start_postgres, start_valkey

    out = tmp_path / "dep"
    generate(out, ["t1"])
    doc = spec.compose_config(["t1"], persons=120)
    fed = out / "federation"

    def secret(name: str) -> str:
        file: str = doc["secrets"][name]["file"]
        return (out / file).read_text().strip()

    work = tmp_path / "run"
    hub_pw = (fed / "redis" / "hub.redis-password").read_text().strip()
    valkey = start_valkey(
        work / "valkey",
        aclfile=fed / "redis" / "users.acl",
        ping_url=f"redis://hub:{hub_pw}@127.0.0.1:{{port}}/0",
    )
    omop_pg = start_postgres(work / "omop", password=secret("t1_db_password"))
    hub_pg = start_postgres(work / "hub", password="unused-superuser")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with psycopg.connect(omop_pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE omop")
        with psycopg.connect(hub_pg.url(), autocommit=True) as conn:  # what POSTGRES_USER/PASSWORD do
            conn.execute(f"CREATE ROLE {spec.HUB_DB_USER} LOGIN PASSWORD '{secret('hub_db_password')}'")
            conn.execute(f"CREATE DATABASE {spec.HUB_DB_NAME} OWNER {spec.HUB_DB_USER}")
        hosts = {
            "@redis:6379": f"@127.0.0.1:{valkey.port}",
            "@hub-db:5432": f"@127.0.0.1:{hub_pg.port}",
            "@omop-db-t1:5432": f"@127.0.0.1:{omop_pg.port}",
        }
        mounts = work / "run-secrets"
        mounts.mkdir()

        def container_env(service: str, **extra: str) -> dict[str, str]:
            """The service's environment, with /run/secrets/X pointing at local copies of its secrets."""
            svc = doc["services"][service]
            env = {k: v for k, v in os.environ.items() if not k.startswith("OMOPFED_")}
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
            targets = {}
            for item in svc.get("secrets", []):
                text = secret(item["source"])
                for old, new in hosts.items():
                    text = text.replace(old, new)
                local = mounts / f"{service}-{item['source']}"
                local.write_text(text + "\n")
                local.chmod(0o600)
                targets[
                    item["target"] if item["target"].startswith("/") else f"/run/secrets/{item['target']}"
                ] = local
            for key, value in svc.get("environment", {}).items():
                env[key] = str(targets.get(value, value))
            return {**env, **extra}

        keys = {
            "OMOPFED_KEYS_DIR": str(fed / "keys" / "t1"),
            "OMOPFED_STATE_DIR": str(fed / "state" / "t1"),
            "OMOPFED_POLICY_FILE": str(fed / "policies" / "t1.toml"),
        }
        init = container_env("omop-init-t1")
        for run in range(2):  # the job runs on every `docker compose up`: the second run must not reload
            done = subprocess.run(
                ["sh", str(REPO / "deploy" / "trust-init.sh")],
                env=init,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert ("loaded bulk data: 120 persons" if run == 0 else "already hold data") in done.stdout
        ready = {n: work / f"{n}.ready" for n in ("hub-reducer", "trust-worker-t1")}
        hub_env = container_env(
            "hub-reducer",
            OMOPFED_HUB_KEYS_DIR=str(fed / "keys" / "hub"),
            OMOPFED_READY_FILE=str(ready["hub-reducer"]),
        )
        worker_env = container_env(
            "trust-worker-t1", **keys, OMOPFED_READY_FILE=str(ready["trust-worker-t1"])
        )
        assert worker_env["OMOPFED_READER_DB_URL_FILE"].endswith("t1_reader_db_url")
        for command, env in (
            (doc["services"]["hub-reducer"]["command"], hub_env),
            (doc["services"]["trust-worker-t1"]["command"], worker_env),
        ):
            log = (work / f"{command[0]}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "omopfed.cli", *command],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 90
        while not all(p.exists() for p in ready.values()):
            assert all(p.poll() is None for p in procs), (work / "trust.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "services not ready"
            time.sleep(0.1)
        submit = subprocess.run(
            [
                sys.executable,
                "-m",
                "omopfed.cli",
                "hub",
                "submit",
                "--json",
                "--sql",
                "SELECT person_id FROM person",
            ],
            env=hub_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert submit.returncode == 0, submit.stderr
        report = json.loads(submit.stdout)
        assert report["status"] == "complete"
        # the generated policy is dp (the default): the count is noisy, and the hub says by how much
        fed_figures = report["federated"]
        margin = fed_figures["margins"]["person_count"]
        assert margin is not None and abs(fed_figures["person_count"] - 120) <= 3 * margin
        assert report["trusts"]["t1"]["privacy"]["mode"] == "dp"
        audit = [json.loads(line) for line in (fed / "state" / "t1" / "audit.jsonl").read_text().splitlines()]
        assert [entry["decision"] for entry in audit] == ["released"]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        valkey.stop()
        omop_pg.stop()
        hub_pg.stop()
