"""The explicit step behind ``omopfed compose --out DIR``: passwords, keys, ACL file and certificates.

Everything the compose file names under ``federation/`` is created here, never embedded in YAML:

```
DIR/.env                          OMOPFED_UID / OMOPFED_GID: who the containers run as (owner of the files)
DIR/federation/                   0700
  redis/users.acl                 0644  ACL users (hashes only), hub_broker.redis_acl.write_acl
  redis/<user>.redis-password     0600
  redis-data/                     0700  Redis append-only files
  secrets/*.password, *-url       0600  database passwords, and URLs that embed them
  keys/hub/…, keys/<trust>/…             omop.keys layout (private 0600, public 0644)
  policies/<trust>.toml           0644  each trust's policy (edit it; never overwritten)
  state/<trust>/                  0700  each worker's ledger and audit log
  tls/ca.crt, redis.crt, *.key           with --tls only
```

Re-running keeps every existing password and key (so a running deployment keeps working), adds what new
trusts need and rewrites only derived files (the ACL file and the URL files). Compose bind-mounts secret
files with their host owner and mode, so the containers must run as the files' owner: ``.env`` records it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from omop.keys import (
    HUB_PUBLIC,
    HUB_SIGNING_KEY,
    PRIVATE_MODE,
    PUBLIC_MODE,
    ensure_dir,
    generate_hub_keys,
    generate_trust_key,
    pin_hub,
    register_trust,
    trust_private_name,
    trust_public_name,
    write_new_file,
)
from omopfed import compose as spec

CONTAINER_UID = 10001  # the image's user; used when the generator runs as root
REDIS_HOST = "redis"
TLS_QUERY = {"ssl_cert_reqs": "required", "ssl_ca_certs": spec.REDIS_CA_TARGET, "ssl_check_hostname": "true"}

DEFAULT_POLICY = """\
# Trust policy for {trust_id}: owned by the hospital's information-governance team, never by the hub.
# Every key is documented in omopfed/examples/trust-policy.toml and docs/query-policy.md.
# The worker re-reads this file when it starts (docker compose restart trust-worker-{trust_id});
# mistakes stop it with a clear error.
threshold = 10
statement_timeout_s = 30
lock_timeout_s = 5
idle_in_transaction_timeout_s = 60
max_query_bytes = 10240
extra_allowed_functions = []
allowed_projects = []

# Differential privacy (docs/privacy.md): every released figure noisy, a privacy budget per project.
# mode = "exact" releases exact figures under the threshold rules only: a governance decision.
[privacy]
mode = "dp"
epsilon_per_query = 1.0
budget_per_project = 10.0
"""


@dataclass
class Generated:
    """What a run created (new secrets/keys) and which derived files it rewrote."""

    created: list[Path] = field(default_factory=list)
    rewritten: list[Path] = field(default_factory=list)


def _local(out_dir: Path, compose_path: str) -> Path:
    """The host path of a ``./federation/...`` path as the compose file spells it."""
    return out_dir / compose_path.removeprefix("./")


def _new_secret(path: Path, made: Generated) -> str:
    """A password kept in ``path``: read if it exists, else created (0600)."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    write_new_file(path, (value + "\n").encode(), PRIVATE_MODE)
    made.created.append(path)
    return value


def _derived(path: Path, text: str, made: Generated, mode: int = PRIVATE_MODE) -> None:
    write_new_file(path, (text + "\n").encode(), mode, replace=path.exists())
    made.rewritten.append(path)


def redis_url(user: str, password: str, *, tls: bool, host: str = REDIS_HOST, port: int = 6379) -> str:
    """The broker URL for an ACL user; with ``tls``, one that verifies the server certificate."""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if not tls:
        return f"redis://{auth}@{host}:{port}/0"
    return f"rediss://{auth}@{host}:{port}/0?{urlencode(TLS_QUERY, safe='/')}"


def postgres_url(
    user: str, password: str, host: str, database: str, *, port: int = 5432, driver: str = ""
) -> str:
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"


def generate(
    out_dir: Path, ids: Sequence[str], *, tls: bool = False, redis_hosts: Sequence[str] = ()
) -> Generated:
    """Create or complete ``out_dir/federation`` for the trusts ``ids`` (see the module docstring)."""
    from hub_broker.redis_acl import HUB_USER, password_file, trust_user, write_acl
    from trust_worker.database_setup import READER_ROLE

    ids = spec.check_ids(ids)
    made = Generated()
    root = out_dir / spec.GENERATED_DIR
    for directory in (root, root / "secrets", root / "policies", root / "state"):
        ensure_dir(directory)
    ensure_dir(_local(out_dir, spec.REDIS_DATA_DIR))

    acl_dir = _local(out_dir, spec.REDIS_ACL_FILE).parent
    made.rewritten.append(write_acl(acl_dir, ids))

    def redis_password(user: str) -> str:
        return password_file(acl_dir, user).read_text().strip()

    hub_files = {k: _local(out_dir, v) for k, v in spec.hub_secret_files().items()}
    hub_db_password = _new_secret(hub_files["hub_db_password"], made)
    _new_secret(hub_files["flower_password"], made)
    hub_pw = redis_password(HUB_USER)
    _derived(hub_files["hub_broker_url"], redis_url(HUB_USER, hub_pw, tls=False), made)
    store = postgres_url(spec.HUB_DB_USER, hub_db_password, "hub-db", spec.HUB_DB_NAME, driver="psycopg")
    _derived(hub_files["hub_store_url"], store, made)

    hub_keys = hub_files["hub_signing_key"].parent
    if not (hub_keys / HUB_SIGNING_KEY).exists():
        generate_hub_keys(hub_keys)
        made.created.append(hub_keys)

    tls_files = {k: _local(out_dir, v) for k, v in spec.tls_secret_files(ids).items()}
    if tls:
        _derived(tls_files["hub_broker_url"], redis_url(HUB_USER, hub_pw, tls=True), made)

    for trust_id in ids:
        files = {
            k.removeprefix(f"{trust_id}_"): _local(out_dir, v)
            for k, v in spec.trust_secret_files(trust_id).items()
        }
        db_host = spec.db_service(trust_id)
        owner_pw = _new_secret(files["db_password"], made)
        reader_pw = _new_secret(files["reader_password"], made)
        _derived(
            files["db_url"], postgres_url(spec.OMOP_DB_OWNER, owner_pw, db_host, spec.OMOP_DB_NAME), made
        )
        reader = postgres_url(READER_ROLE, reader_pw, db_host, spec.OMOP_DB_NAME)
        _derived(files["reader_db_url"], reader, made)
        user = trust_user(trust_id)
        _derived(files["broker_url"], redis_url(user, redis_password(user), tls=False), made)
        if tls:
            _derived(
                tls_files[f"{trust_id}_broker_url"], redis_url(user, redis_password(user), tls=True), made
            )

        trust_keys = files["signing_key"].parent
        if not (trust_keys / trust_private_name(trust_id)).exists():
            generate_trust_key(trust_id, trust_keys)
            made.created.append(trust_keys / trust_private_name(trust_id))
        register_trust(hub_keys, trust_keys / trust_public_name(trust_id))
        pin_hub(trust_keys, hub_keys / HUB_PUBLIC)

        policy = _local(out_dir, spec.policy_file(trust_id))
        if not policy.exists():
            write_new_file(policy, DEFAULT_POLICY.format(trust_id=trust_id).encode(), PUBLIC_MODE)
            made.created.append(policy)
        ensure_dir(_local(out_dir, spec.state_dir(trust_id)))

    if tls:
        from omopfed.compose_tls import ensure_certificates

        made.created.extend(
            ensure_certificates(
                ca_cert=tls_files["redis_ca"],
                cert=tls_files["redis_tls_cert"],
                key=tls_files["redis_tls_key"],
                names=[REDIS_HOST, "localhost", "127.0.0.1", *redis_hosts],
                now=datetime.now(UTC),
            )
        )
    owner = _owner()
    _write_dotenv(out_dir / ".env", owner, made)
    if os.getuid() == 0:
        _chown_tree(root, owner)
    return made


def _owner() -> tuple[int, int]:
    """Who the containers run as: whoever generated the files, but never root."""
    if os.getuid() == 0:
        return CONTAINER_UID, CONTAINER_UID
    return os.getuid(), os.getgid()


def _write_dotenv(path: Path, owner: tuple[int, int], made: Generated) -> None:
    """Set OMOPFED_UID/OMOPFED_GID in ``.env`` (Compose reads it for ``${…}``), keeping other lines."""
    wanted = {"OMOPFED_UID": str(owner[0]), "OMOPFED_GID": str(owner[1])}
    lines = (
        path.read_text().splitlines()
        if path.exists()
        else [
            "# Read by docker compose for ${...} in docker-compose.yml. OMOPFED_UID/GID (written by",
            "# omopfed compose): owner of ./federation; secret files are bind-mounted with owner and mode.",
        ]
    )
    kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in wanted]
    text = "\n".join([*kept, *(f"{k}={v}" for k, v in wanted.items())]) + "\n"
    write_new_file(path, text.encode(), PUBLIC_MODE, replace=path.exists())
    made.rewritten.append(path)


def _chown_tree(root: Path, owner: tuple[int, int]) -> None:
    for base, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(Path(base) / name, *owner, follow_symlinks=False)
    os.chown(root, *owner)
