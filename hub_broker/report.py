"""The researcher-facing view of a query: the JSON object ``hub submit --json`` and ``hub result`` print."""

from __future__ import annotations

from typing import Any

from hub_broker.store import Query
from omop.states import QueryStatus, TrustStatus

EXIT_CODES: dict[str, int] = {QueryStatus.COMPLETE: 0, QueryStatus.PARTIAL: 3, QueryStatus.FAILED: 4}


def trust_entry(status: str, detail: str | None, result: dict[str, Any] | None) -> dict[str, Any]:
    """One trust's part of the report: status, why, and figures when released.

    Built from named keys only, so nothing about how the query ran at the trust could reach the
    researcher even if a stored answer carried it (answers carry no timing: ``omop.protocol.TrustResult``).
    """
    entry: dict[str, Any] = {"status": status, "detail": detail}
    if result is not None:
        entry["reason_code"] = result.get("reason_code")
        if status == TrustStatus.RELEASED:
            for key in ("person_count", "row_count", "sex", "age", "columns", "numeric"):
                entry[key] = result.get(key)
        if result.get("privacy") is not None:
            entry["privacy"] = result["privacy"]
    return entry


def query_report(query: Query) -> dict[str, Any]:
    pooled = query.pooled or {}
    federated: dict[str, Any] = {
        "person_count": pooled.get("person_count"),
        "sex": pooled.get("sex", {}),
        "age": pooled.get("age", {}),
        "trusts_released": pooled.get("trusts_released", 0),
        "margins": pooled.get("margins", {}),
        "cells": pooled.get("cells", {}),
        "noisy_trusts": pooled.get("noisy_trusts", []),
    }
    if "numeric" in pooled:
        federated["numeric"] = pooled["numeric"]
    return {
        "query_id": query.query_id,
        "status": query.status,
        "threshold": query.threshold,
        "project_id": query.project_id,
        "created_at": query.created_at.isoformat(),
        "deadline_at": query.deadline_at.isoformat(),
        "finalized_at": query.finalized_at.isoformat() if query.finalized_at else None,
        "trusts": {a.trust_id: trust_entry(a.status, a.detail, a.result) for a in query.answers},
        "federated": federated,
    }
