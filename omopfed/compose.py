"""Docker Compose description of a federation: one hub (Redis, store, reducer) and N trusts (pure).

``compose_config`` returns the compose file as a plain dict; ``to_yaml`` renders it. Nothing here touches
the disk or holds a secret: every password, URL with a password and private key is a compose *secret*
read from a file under ``federation/`` next to the compose file, which ``omopfed.compose_secrets`` writes
in a separate, explicit step. That keeps the YAML shareable and reviewable, and the checked-in
``docker-compose.yml`` is exactly ``compose_config(["t1", "t2"])``.

Isolation is the point of the layout:

* each trust's database sits on its own ``internal`` network that only its init job and its worker join,
  so neither the hub nor another trust can reach it, and it publishes no port;
* workers reach Redis on the ``hub`` network, outbound only; Redis is the one published port;
* the hub store has its own internal network too.

Containers built from our image run as ``${OMOPFED_UID}:${OMOPFED_GID}`` (written to ``.env`` by the
secrets step: the owner of ``federation/``), because Compose bind-mounts secret files with their host
owner and mode and the key loaders insist on mode 0600.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

import yaml

from omop.errors import UsageError
from omop.protocol import check_trust_id
from omopfed.broker_config import DEFAULT_MAXMEMORY, BrokerTls, broker_settings, command_args, parse_maxmemory
from omopfed.trust_ids import MAX_TRUSTS

DEFAULT_PERSONS = 1000

POSTGRES_IMAGE = "postgres:17.6-bookworm"
VALKEY_IMAGE = "valkey/valkey:9.0.8-trixie"
FLOWER_IMAGE = "mher/flower:2.0.1"
IMAGE_NAME = "omopfed"

GENERATED_DIR = "federation"  # relative to the compose file; written by omopfed.compose_secrets
RUN_AS = "${OMOPFED_UID:-10001}:${OMOPFED_GID:-10001}"
READY_FILE = "/tmp/omopfed.ready"  # noqa: S108 - a tmpfs inside the container, fresh on every start
STATE_DIR = "/var/lib/omopfed/state"
POLICY_PATH = "/etc/omopfed/trust-policy.toml"
HUB_KEYS = "/run/secrets/hub-keys"
TRUST_KEYS = "/run/secrets/trust-keys"
REDIS_ACL_PATH = "/etc/valkey/users.acl"
REDIS_CA_TARGET = "/run/secrets/redis-ca.crt"
REDIS_TLS_CERT_TARGET = "/run/secrets/redis-tls.crt"
REDIS_TLS_KEY_TARGET = "/run/secrets/redis-tls.key"
REDIS_DATA_TARGET = "/data"
HUB_DB_USER = "omopfed_hub"
HUB_DB_NAME = "omopfed_hub"
OMOP_DB_NAME = "omop"
OMOP_DB_OWNER = "postgres"

COMPOSE_FILE = "docker-compose.yml"
TLS_OVERRIDE_FILE = "docker-compose.tls.yml"


def default_image() -> str:
    """``omopfed:<installed version>``: pinned to the code that generated the file."""
    try:
        version = metadata.version("omop-federation")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        version = "0.1.0"
    return f"{IMAGE_NAME}:{version}"


def check_ids(ids: Sequence[str]) -> list[str]:
    if not 1 <= len(ids) <= MAX_TRUSTS:
        raise UsageError(f"a deployment has between 1 and {MAX_TRUSTS} trusts (got {len(ids)})")
    checked = [check_trust_id(t) for t in ids]
    if len(set(checked)) != len(checked):
        raise UsageError("trust ids must be unique")
    return checked


def populations(persons: int | Sequence[int], count: int) -> list[int]:
    """One synthetic population per trust (0: schema and role only, no demo data)."""
    sizes = [persons] * count if isinstance(persons, int) else list(persons)
    if len(sizes) != count:
        raise UsageError(f"give one population size per trust ({count}), got {len(sizes)}")
    if any(n < 0 for n in sizes):
        raise UsageError("--persons cannot be negative")
    return sizes


# -- names: every service, network, volume and file path in one place ----------------------------------


def db_service(trust_id: str) -> str:
    return f"omop-db-{trust_id}"


def init_service(trust_id: str) -> str:
    return f"omop-init-{trust_id}"


def worker_service(trust_id: str) -> str:
    return f"trust-worker-{trust_id}"


def trust_network(trust_id: str) -> str:
    return f"trust-{trust_id}"


def gen(path: str) -> str:
    """A path under the generated directory, as the compose file (and the secrets step) spell it."""
    return f"./{GENERATED_DIR}/{path}"


def hub_secret_files() -> dict[str, str]:
    """Compose secret name → file, for the hub side."""
    return {
        "hub_broker_url": gen("secrets/hub.broker-url"),
        "hub_store_url": gen("secrets/hub.store-url"),
        "hub_db_password": gen("secrets/hub-db.password"),
        "hub_signing_key": gen("keys/hub/hub_signing.key"),
        "hub_encryption_key": gen("keys/hub/hub_encryption.key"),
        "hub_public_keys": gen("keys/hub/hub.pub.json"),
        "flower_password": gen("secrets/flower.password"),
    }


def trust_secret_files(trust_id: str) -> dict[str, str]:
    """Compose secret name → file, for one trust (prefixed with the trust id)."""
    return {
        f"{trust_id}_broker_url": gen(f"secrets/{trust_id}.broker-url"),
        f"{trust_id}_db_password": gen(f"secrets/{trust_id}.db-password"),
        f"{trust_id}_db_url": gen(f"secrets/{trust_id}.db-url"),
        f"{trust_id}_reader_password": gen(f"secrets/{trust_id}.reader-password"),
        f"{trust_id}_reader_db_url": gen(f"secrets/{trust_id}.reader-db-url"),
        f"{trust_id}_signing_key": gen(f"keys/{trust_id}/trust_{trust_id}.key"),
        f"{trust_id}_pinned_hub": gen(f"keys/{trust_id}/hub.pub.json"),
        f"{trust_id}_public_key": gen(f"keys/hub/trusts/{trust_id}.pub.json"),
    }


def tls_secret_files(trust_ids: Sequence[str]) -> dict[str, str]:
    """Secrets the TLS override adds or re-points (broker URLs with verification options)."""
    files = {
        "redis_ca": gen("tls/ca.crt"),
        "redis_tls_cert": gen("tls/redis.crt"),
        "redis_tls_key": gen("tls/redis.key"),
        "hub_broker_url": gen("secrets/hub.broker-url.tls"),
    }
    files.update({f"{t}_broker_url": gen(f"secrets/{t}.broker-url.tls") for t in trust_ids})
    return files


def policy_file(trust_id: str) -> str:
    return gen(f"policies/{trust_id}.toml")


def state_dir(trust_id: str) -> str:
    return gen(f"state/{trust_id}")


REDIS_DATA_DIR = gen("redis-data")
REDIS_ACL_FILE = gen("redis/users.acl")


# -- services ------------------------------------------------------------------------------------------


def _secret(source: str, target: str) -> dict[str, str]:
    return {"source": source, "target": target}


def _healthcheck(test: list[str], start_period: str = "30s") -> dict[str, Any]:
    return {"test": test, "interval": "10s", "timeout": "5s", "retries": 5, "start_period": start_period}


def _healthy(*services: str) -> dict[str, dict[str, str]]:
    return {s: {"condition": "service_healthy"} for s in services}


def _omopfed_service(image: str, build_context: str | None) -> dict[str, Any]:
    """What every container of our image shares: pinned image, non-root, read-only root, no capabilities."""
    service: dict[str, Any] = {"image": image}
    if build_context is not None:
        service["build"] = {"context": build_context, "dockerfile": "Dockerfile"}
    service.update(
        {
            "user": RUN_AS,
            "read_only": True,
            "tmpfs": ["/tmp"],  # noqa: S108 - container-private tmpfs
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
        }
    )
    return service


def _postgres_service(
    database: str, user: str, password_secret: str, network: str, volume: str
) -> dict[str, Any]:
    return {
        "image": POSTGRES_IMAGE,
        "environment": {
            "POSTGRES_DB": database,
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password",
        },
        "secrets": [_secret(password_secret, "postgres-password")],
        "volumes": [f"{volume}:/var/lib/postgresql/data"],
        "networks": [network],
        "security_opt": ["no-new-privileges:true"],
        # over TCP: the image's first-run initialisation server listens on the socket only, so a socket
        # check would report ready before the real server is up
        "healthcheck": _healthcheck(
            ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", user, "-d", database], "20s"
        ),
        "restart": "unless-stopped",
    }


def redis_command(*, tls: bool, maxmemory: str = DEFAULT_MAXMEMORY) -> list[str]:
    """``valkey-server`` with the broker settings of ``omopfed.broker_config`` (the embedded server's too):
    AOF persistence, a memory limit with refusal instead of eviction, the admin surface closed, users from
    the ACL file; listening on 6379 (only TLS with ``tls``) on every interface of the container."""
    settings = broker_settings(
        aclfile=REDIS_ACL_PATH,
        data_dir=REDIS_DATA_TARGET,
        maxmemory=maxmemory,
        port=6379,
        tls=BrokerTls(REDIS_TLS_CERT_TARGET, REDIS_TLS_KEY_TARGET, REDIS_CA_TARGET) if tls else None,
    )
    return ["valkey-server", *command_args(settings)]


def redis_healthcheck(*, tls: bool) -> dict[str, Any]:
    # The default user is off, so an anonymous PING answers NOAUTH: that still proves the server is up
    # and needs no password inside the health check.
    cli = "valkey-cli -h localhost -p 6379"
    if tls:
        cli += f" --tls --cacert {REDIS_CA_TARGET}"
    return _healthcheck(["CMD-SHELL", f"{cli} ping 2>&1 | grep -qE 'PONG|NOAUTH'"], "10s")


def _redis(maxmemory: str) -> dict[str, Any]:
    return {
        "image": VALKEY_IMAGE,
        "user": RUN_AS,  # reads the generated files as their owner; data in a bind mount it owns
        "command": redis_command(tls=False, maxmemory=maxmemory),
        "configs": [{"source": "redis_acl", "target": REDIS_ACL_PATH}],
        "volumes": [f"{REDIS_DATA_DIR}:{REDIS_DATA_TARGET}"],
        "ports": ["${OMOPFED_REDIS_BIND:-127.0.0.1}:${OMOPFED_REDIS_PORT:-6379}:6379"],
        "networks": ["hub"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "healthcheck": redis_healthcheck(tls=False),
        "restart": "unless-stopped",
    }


def _hub_environment() -> dict[str, str]:
    return {
        "OMOPFED_BROKER_URL_FILE": "/run/secrets/broker-url",
        "OMOPFED_HUB_STORE_URL_FILE": "/run/secrets/hub-store-url",
        "OMOPFED_HUB_KEYS_DIR": HUB_KEYS,
    }


def _hub_secrets(ids: Sequence[str]) -> list[dict[str, str]]:
    return [
        _secret("hub_broker_url", "broker-url"),
        _secret("hub_store_url", "hub-store-url"),
        _secret("hub_signing_key", f"{HUB_KEYS}/hub_signing.key"),
        _secret("hub_encryption_key", f"{HUB_KEYS}/hub_encryption.key"),
        _secret("hub_public_keys", f"{HUB_KEYS}/hub.pub.json"),
        *(_secret(f"{t}_public_key", f"{HUB_KEYS}/trusts/{t}.pub.json") for t in ids),
    ]


def _hub_reducer(ids: Sequence[str], image: str, build_context: str | None) -> dict[str, Any]:
    service = _omopfed_service(image, build_context)
    service.update(
        {
            "command": ["hub", "reducer"],
            "environment": {**_hub_environment(), "OMOPFED_READY_FILE": READY_FILE},
            "secrets": _hub_secrets(ids),
            "networks": ["hub", "hub-store"],
            "depends_on": _healthy("redis", "hub-db"),
            # healthy only while it consumes: the reducer refreshes the file after every working round trip
            "healthcheck": _healthcheck(["CMD", "python", "-c", _fresh_file_check(READY_FILE, 15)]),
            "restart": "unless-stopped",
        }
    )
    return service


def _fresh_file_check(path: str, seconds: int) -> str:
    """A healthcheck body: the file exists and was refreshed within ``seconds`` (no omopfed start-up)."""
    return (
        f"import os, sys, time; p = {path!r}; "
        f"sys.exit(0 if os.path.exists(p) and time.time() - os.path.getmtime(p) < {seconds} else 1)"
    )


def _hub_cli(ids: Sequence[str], image: str, build_context: str | None) -> dict[str, Any]:
    """``docker compose run --rm hub-cli hub submit --sql …``: the submit/status/result commands."""
    service = _omopfed_service(image, build_context)
    service.update(
        {
            "profiles": ["cli"],
            "command": ["hub", "--help"],
            "environment": _hub_environment(),
            "secrets": _hub_secrets(ids),
            "networks": ["hub", "hub-store"],
            "depends_on": _healthy("redis", "hub-db"),
        }
    )
    return service


FLOWER_SCRIPT = (
    'export CELERY_BROKER_URL="$$(cat /run/secrets/broker-url)"; '
    'export FLOWER_BASIC_AUTH="admin:$$(cat /run/secrets/flower-password)"; '
    "exec celery flower --address=0.0.0.0 --port=5555"
)


def _flower() -> dict[str, Any]:
    """Queue depths per trust and on hub.results, with the hub's broker user only (monitoring profile)."""
    return {
        "image": FLOWER_IMAGE,
        "profiles": ["monitoring"],
        "user": RUN_AS,
        "entrypoint": ["/bin/sh", "-c", FLOWER_SCRIPT],
        "secrets": [_secret("hub_broker_url", "broker-url"), _secret("flower_password", "flower-password")],
        "ports": ["127.0.0.1:${OMOPFED_FLOWER_PORT:-5555}:5555"],
        "networks": ["hub"],
        "depends_on": _healthy("redis"),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "healthcheck": _healthcheck(
            ["CMD", "python", "-c", "import socket; socket.create_connection(('127.0.0.1', 5555), 4).close()"]
        ),
        "restart": "unless-stopped",
    }


def _omop_init(
    trust_id: str, index: int, persons: int, image: str, build_context: str | None
) -> dict[str, Any]:
    """One-shot: schema, read-only role (idempotent), then demo data while the tables are empty."""
    service = _omopfed_service(image, build_context)
    service.update(
        {
            "entrypoint": ["omopfed-trust-init"],
            "environment": {
                "OMOPFED_DB_URL_FILE": "/run/secrets/db-url",
                "OMOPFED_READER_PASSWORD_FILE": "/run/secrets/reader-password",
                "OMOPFED_SEED_PERSONS": str(persons),
                "OMOPFED_SEED": str(index + 1),
            },
            "secrets": [
                _secret(f"{trust_id}_db_url", "db-url"),
                _secret(f"{trust_id}_reader_password", "reader-password"),
            ],
            "networks": [trust_network(trust_id)],
            "depends_on": _healthy(db_service(trust_id)),
            "restart": "no",
        }
    )
    return service


WORKER_STOP_GRACE = "90s"


def _trust_worker(trust_id: str, image: str, build_context: str | None) -> dict[str, Any]:
    service = _omopfed_service(image, build_context)
    service.update(
        {
            "command": ["trust", "worker"],
            "environment": {
                "OMOPFED_TRUST_ID": trust_id,
                "OMOPFED_BROKER_URL_FILE": "/run/secrets/broker-url",
                "OMOPFED_READER_DB_URL_FILE": "/run/secrets/reader-db-url",
                "OMOPFED_KEYS_DIR": TRUST_KEYS,
                "OMOPFED_POLICY_FILE": POLICY_PATH,
                "OMOPFED_STATE_DIR": STATE_DIR,
                "OMOPFED_READY_FILE": READY_FILE,
            },
            "secrets": [
                _secret(f"{trust_id}_broker_url", "broker-url"),
                _secret(f"{trust_id}_reader_db_url", "reader-db-url"),
                _secret(f"{trust_id}_signing_key", f"{TRUST_KEYS}/trust_{trust_id}.key"),
                _secret(f"{trust_id}_pinned_hub", f"{TRUST_KEYS}/hub.pub.json"),
            ],
            "configs": [{"source": f"{trust_id}_policy", "target": POLICY_PATH}],
            "volumes": [f"{state_dir(trust_id)}:{STATE_DIR}"],
            "networks": [trust_network(trust_id), "hub"],
            "depends_on": {
                init_service(trust_id): {"condition": "service_completed_successfully"},
                **_healthy("redis"),
            },
            # healthy while it consumes: heartbeats through its own queue refresh the file every 5 s when
            # idle, and every task refreshes it at start and end (a long query delays the heartbeat)
            "healthcheck": _healthcheck(["CMD", "python", "-c", _fresh_file_check(READY_FILE, 150)], "60s"),
            "restart": "unless-stopped",
            # SIGTERM lets the worker finish its task; the grace period outlasts the longest statement the
            # policy allows by default (30 s), so a restart during a query is not a SIGKILL
            "stop_grace_period": WORKER_STOP_GRACE,
        }
    )
    return service


# -- the documents -------------------------------------------------------------------------------------


def compose_config(
    ids: Sequence[str],
    *,
    persons: int | Sequence[int] = DEFAULT_PERSONS,
    build_context: str | None = ".",
    image: str | None = None,
    broker_maxmemory: str = DEFAULT_MAXMEMORY,
) -> dict[str, Any]:
    """The compose file for a hub and the trusts ``ids``.

    ``persons``: synthetic persons loaded into each trust's database by its init job (0: none, the hospital
    loads its own ETL output). ``build_context``: where the Dockerfile is, relative to the compose file
    (None: use ``image`` as published, no build). ``broker_maxmemory``: the broker's memory limit.
    """
    ids = check_ids(ids)
    sizes = populations(persons, len(ids))
    image = image or default_image()
    services: dict[str, Any] = {
        "redis": _redis(parse_maxmemory(broker_maxmemory)),
        "hub-db": _postgres_service(HUB_DB_NAME, HUB_DB_USER, "hub_db_password", "hub-store", "hub-db-data"),
        "hub-reducer": _hub_reducer(ids, image, build_context),
        "hub-cli": _hub_cli(ids, image, build_context),
        "flower": _flower(),
    }
    networks: dict[str, Any] = {"hub": {}, "hub-store": {"internal": True}}
    volumes: dict[str, Any] = {"hub-db-data": {}}
    secrets = {name: {"file": path} for name, path in hub_secret_files().items()}
    configs: dict[str, Any] = {"redis_acl": {"file": REDIS_ACL_FILE}}
    for index, trust_id in enumerate(ids):
        volume = f"{db_service(trust_id)}-data"
        services[db_service(trust_id)] = _postgres_service(
            OMOP_DB_NAME, OMOP_DB_OWNER, f"{trust_id}_db_password", trust_network(trust_id), volume
        )
        services[init_service(trust_id)] = _omop_init(trust_id, index, sizes[index], image, build_context)
        services[worker_service(trust_id)] = _trust_worker(trust_id, image, build_context)
        networks[trust_network(trust_id)] = {"internal": True}
        volumes[volume] = {}
        secrets.update({name: {"file": path} for name, path in trust_secret_files(trust_id).items()})
        configs[f"{trust_id}_policy"] = {"file": policy_file(trust_id)}
    return {
        "name": "omopfed",
        "services": services,
        "networks": networks,
        "volumes": volumes,
        "secrets": secrets,
        "configs": configs,
    }


def tls_override_config(ids: Sequence[str], *, broker_maxmemory: str = DEFAULT_MAXMEMORY) -> dict[str, Any]:
    """``docker-compose.tls.yml``: Redis speaks only TLS and every client verifies its certificate.

    Clients get broker URLs of the form
    ``rediss://user:pw@redis:6379/0?ssl_cert_reqs=required&ssl_ca_certs=…&ssl_check_hostname=true``
    (a bare ``rediss://`` would skip verification); the files are written by ``--tls``.
    """
    ids = check_ids(ids)
    ca = _secret("redis_ca", REDIS_CA_TARGET)
    services: dict[str, Any] = {
        "redis": {
            "command": redis_command(tls=True, maxmemory=parse_maxmemory(broker_maxmemory)),
            "secrets": [
                ca,
                _secret("redis_tls_cert", REDIS_TLS_CERT_TARGET.removeprefix("/run/secrets/")),
                _secret("redis_tls_key", REDIS_TLS_KEY_TARGET.removeprefix("/run/secrets/")),
            ],
            "healthcheck": redis_healthcheck(tls=True),
        },
        "hub-reducer": {"secrets": [ca]},
        "hub-cli": {"secrets": [ca]},
        "flower": {"secrets": [ca]},
    }
    for trust_id in ids:
        services[worker_service(trust_id)] = {"secrets": [ca]}
    return {
        "services": services,
        "secrets": {name: {"file": path} for name, path in tls_secret_files(ids).items()},
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors/aliases (shared sub-dicts are written out), indented block style, and short
    lists of scalars (commands, networks) on one line, as people write compose files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    scalars = all(isinstance(item, str | int) for item in data)
    flow = scalars and sum(len(str(item)) + 2 for item in data) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def to_yaml(doc: dict[str, Any], header: str = "") -> str:
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body


def compose_header(
    ids: Sequence[str], *, tls: bool = False, broker_maxmemory: str = DEFAULT_MAXMEMORY
) -> str:
    what = "TLS override for" if tls else "Hub plus"
    command = f"omopfed compose --trusts {len(ids)}" + (" --tls" if tls else "")
    maxmemory = parse_maxmemory(broker_maxmemory)
    if maxmemory != DEFAULT_MAXMEMORY:  # regenerating must repeat it: the header says how
        command += f" --broker-maxmemory {maxmemory}"
    return (
        f"{what} {len(ids)} trust(s) ({', '.join(ids)}). Generated by: {command}\n"
        "Do not edit: regenerate. Secrets, keys and the Redis ACL file live in ./federation/, written by\n"
        "`omopfed compose --out DIR`; see docs/deploy-hub.md and docs/deploy-trust.md."
    )
