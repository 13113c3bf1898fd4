"""The hub's reducer: verify, decrypt, store each trust answer once, and finalise queries that are done.

Every refusal (malformed message, unknown trust, bad signature, failed decryption, mismatched ids, a
result for a query or trust that was never asked) is logged and counted in the store, and the message is
dropped: a hostile or broken message can never crash the reducer or block the queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_broker.finalize import finalize_if_due
from hub_broker.store import HubStore
from omop.crypto import ResultRejected, open_result
from omop.keys import load_trust_registry
from omop.protocol import ProtocolError, ResultEnvelope

log = logging.getLogger("omopfed.hub")


@dataclass
class Reducer:
    store: HubStore
    hub_encryption_key: X25519PrivateKey
    keys_dir: Path
    registry: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    def reload_registry(self) -> None:
        self.registry = dict(load_trust_registry(self.keys_dir))

    def handle(self, wire: Any) -> str:
        """Process one message from ``hub.results``; returns ``stored``, ``duplicate`` or a refusal code."""
        try:
            envelope = ResultEnvelope.from_wire(wire)
        except ProtocolError as exc:
            return self._refuse("malformed", str(exc))
        if envelope.trust_id not in self.registry:
            self.reload_registry()  # a trust registered after the reducer started
        try:
            result = open_result(
                envelope, trust_verify_keys=self.registry, hub_x25519_private=self.hub_encryption_key
            )
        except ResultRejected as exc:
            return self._refuse(exc.code, str(exc), envelope.query_id, envelope.trust_id)
        recorded = self.store.record_answer(
            result.query_id, result.trust_id, result.status, result.detail, result.model_dump(mode="json")
        )
        if recorded == "unknown":
            return self._refuse(
                "unknown_query", "no such query was sent to this trust", result.query_id, result.trust_id
            )
        stored = recorded == "stored"
        if stored:
            finalize_if_due(self.store, result.query_id)
        log.info(
            "query %s trust %s: %s%s",
            result.query_id,
            result.trust_id,
            result.status,
            "" if stored else " (duplicate ignored)",
        )
        return "stored" if stored else "duplicate"

    def _refuse(
        self, code: str, detail: str, query_id: str | None = None, trust_id: str | None = None
    ) -> str:
        log.warning("refused a result message (%s): %s", code, detail)
        self.store.refuse(code, detail, query_id, trust_id)
        return code
