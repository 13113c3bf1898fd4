"""Every closed vocabulary of the federation in one place, as ``StrEnum``s (like ``celery.states``).

A member *is* its string (``ResultStatus.RELEASED == "released"``, ``json.dumps`` writes ``"released"``),
so what travels on the wire, what the hub stores and what the audit log records are the same strings as
before these enums existed: the enums name the values in code, they never change them. Pydantic fields
typed with an enum accept the member or its value and dump the value.

Who says what:

* :class:`TaskKind`: what a query asks (the hub store's ``kind`` column).
* :class:`PrivacyMode`: how a trust protects its figures (policy ``[privacy] mode``, every answer's
  ``privacy.mode``).
* :class:`ResultStatus`: a trust's answer (``TrustResult.status``).
* :class:`TrustStatus`: where one addressed trust stands in a query at the hub (an answer's status, or
  ``pending`` / ``timeout``).
* :class:`QueryStatus`: a query at the hub (``pending`` until final).
* :class:`ColumnStatus`: one numeric column in an answer and in the pooled result.
* :class:`AuditDecision`: what the trust's audit log records for an entry.
* :class:`ReasonCode`: the reason codes a trust gives itself in an answer (an answer refused by the SQL
  policy carries the policy's own code instead, see ``omop.sql_policy``).
* :class:`RefusalCode`: why a message was refused before it was answered or stored (``ProtocolError``,
  ``TaskRejected``, ``ResultRejected``, the hub reducer).
* :class:`ClaimState`: what the trust's task ledger knows about a query id.
* :class:`Recorded`: what the hub store did with an answer.
"""

from __future__ import annotations

from enum import StrEnum


class TaskKind(StrEnum):
    """What a query asks the trusts to compute."""

    COHORT_STATS = "cohort_stats"


class PrivacyMode(StrEnum):
    """``dp``: every released figure is noisy, a budget per project. ``exact``: threshold rules only."""

    DP = "dp"
    EXACT = "exact"


class ResultStatus(StrEnum):
    """A trust's answer: only ``released`` carries figures."""

    RELEASED = "released"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"
    ERROR = "error"


class TrustStatus(StrEnum):
    """One addressed trust in a query at the hub: its answer's status, or no answer (yet)."""

    PENDING = "pending"
    RELEASED = "released"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"
    ERROR = "error"
    TIMEOUT = "timeout"


#: Trust statuses that count as answered for a query's overall status.
ANSWERED: tuple[TrustStatus, ...] = (TrustStatus.RELEASED, TrustStatus.SUPPRESSED)


class QueryStatus(StrEnum):
    """A query at the hub: ``pending``, then ``complete`` (every trust answered), ``partial``, ``failed``."""

    PENDING = "pending"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"


#: The states a query ends in.
FINAL_QUERY_STATES: tuple[QueryStatus, ...] = (QueryStatus.COMPLETE, QueryStatus.PARTIAL, QueryStatus.FAILED)


class ColumnStatus(StrEnum):
    """One numeric column of an answer (and of the pooled result)."""

    RELEASED = "released"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"


class AuditDecision(StrEnum):
    """The ``decision`` of an audit log entry: an answer's status, or what happened instead of an answer."""

    RELEASED = "released"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"
    ERROR = "error"
    REFUSED = "refused"
    RESENT = "resent"
    BUDGET_GRANTED = "budget_granted"


class ReasonCode(StrEnum):
    """The reason codes a trust sets itself in an answer's ``reason_code`` (and a numeric column's)."""

    # refused before any data is read
    PROJECT_NOT_ALLOWED = "project_not_allowed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    # the numeric request does not fit this cohort or this trust
    HISTOGRAM_TOO_FINE = "histogram_too_fine"
    BOUNDS_REQUIRED = "bounds_required"
    BOUNDS_NOT_ALLOWED = "bounds_not_allowed"
    UNKNOWN_COLUMN = "unknown_column"
    PERSON_ID_COLUMN = "person_id_column"
    NOT_NUMERIC = "not_numeric"
    NO_NUMERIC_COLUMNS = "no_numeric_columns"
    OUT_OF_RANGE = "out_of_range"
    # it did not run to the end
    EXECUTION_FAILED = "execution_failed"
    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal_error"


class RefusalCode(StrEnum):
    """Why a message was refused before anyone answered or stored it (never an answer's reason code,
    except ``expired`` and ``not_yet_valid``, which a trust also answers with)."""

    MALFORMED = "malformed"
    BAD_VERSION = "bad_version"
    BAD_BASE64 = "bad_base64"
    TOO_LARGE = "too_large"
    WRONG_KEY = "wrong_key"
    BAD_SIGNATURE = "bad_signature"
    MISADDRESSED = "misaddressed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN_TRUST = "unknown_trust"
    DECRYPT_FAILED = "decrypt_failed"
    MISMATCH = "mismatch"
    WRONG_OWNER = "wrong_owner"
    UNKNOWN_QUERY = "unknown_query"
    INTERNAL_ERROR = "internal_error"


class ClaimState(StrEnum):
    """The task ledger on a query id: ``new`` (run it), ``done`` (re-send the answer), ``interrupted``."""

    NEW = "new"
    DONE = "done"
    INTERRUPTED = "interrupted"


class Recorded(StrEnum):
    """The hub store on an answer: ``stored``, ``duplicate`` (already answered) or ``unknown`` query."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
