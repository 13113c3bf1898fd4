"""Every error ``omopfed`` reports, in one hierarchy, and the exit codes they map to.

An ``OmopFedError`` is an error a user can act on: ``str(exc)`` is the whole message, one line, no internals.
The command line (``omopfed.cli.main``) prints it as ``error: <message>`` on stderr, never a traceback, and
exits with the class's ``exit_code`` (a class attribute: an error's code follows from what it is, never from
where it is raised). Anything else that escapes a command is a bug and keeps its traceback.

The classes, where they are raised, and their exit codes (README.md, "Exit codes")::

    OmopFedError                1  the command could not do its work (the base; raised as is too)
    ├── UsageError              2  the command line, a setting or an input file is wrong
    │   └── QueryRejected       2  the SQL is outside the query policy (omop.sql_policy) [also a CodedError]
    ├── CodedError              1  a refusal with a stable ``code`` token for logs, audit and answers
    │   ├── ProtocolError          a message that is not well-formed protocol (omop.protocol)
    │   ├── TaskRejected           a task the trust must not run: signature, address, expiry (omop.crypto)
    │   ├── ResultRejected         a result the hub must not store (omop.crypto)
    │   ├── NumericRejected        a numeric request the cohort cannot answer (trust_worker.numeric_sql)
    │   ├── Inadmissible           a task refused before any data is read (trust_worker.pipeline)
    │   └── QueryRejected          (see UsageError)
    ├── ExecutionFailed            a cohort statement did not complete (trust_worker.executor)
    ├── DatabaseUnavailable        a PostgreSQL server unreachable or refusing credentials (trust_worker.db)
    ├── ForeignSchemaError         schema omop holds objects that are not ours (trust_worker.schema_checks)
    ├── SchemaMissingError         schema omop or some of its tables do not exist (trust_worker.schema_checks)
    ├── DataPresentError           the omop tables hold rows, --replace not given (trust_worker.data_loading)
    ├── KeyFileError               a key file missing, unreadable, too open, corrupt, in conflict (omop.keys)
    ├── LocalServiceError          an embedded server would not start or stop (omopfed.localservices)
    └── RequestRefused             a request the hub service does not serve, with its HTTP status
                                   (hub_broker.service; it never reaches a command line)

The modules named keep importing (and re-exporting) their classes, so ``from omop.keys import KeyFileError``
still works. Codes 3 and 4 are not errors: they are the outcome of a query (``ExitCode``).

Helpers every module uses instead of writing their own: ``first_line`` (the first line of any exception, for
one-line messages about a library's error) and ``first_invalid`` (the first problem of a pydantic
``ValidationError``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError


class ExitCode(IntEnum):
    """What an ``omopfed`` command's exit status means; the same for every command (README.md)."""

    OK = 0
    """Done. For a query: every trust asked answered (released its figures, or suppressed them)."""
    ERROR = 1
    """The command could not do its work (an ``OmopFedError``), or a check it ran found a problem."""
    USAGE = 2
    """The command line, a setting or an input is wrong (a ``UsageError`` or a command-line parse error)."""
    PARTIAL = 3
    """A query some of the trusts asked answered, but not all (rejected, failed or missed the deadline)."""
    FAILED = 4
    """A query no trust answered."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT)."""


class OmopFedError(Exception):
    """An error a user can act on. ``str(exc)`` is the whole message: one line, no internals."""

    exit_code: ClassVar[int] = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)


class UsageError(OmopFedError):
    """Bad arguments, settings or input from the user (exit code 2, like a command-line usage error)."""

    exit_code = ExitCode.USAGE


class CodedError(OmopFedError):
    """A refusal with a stable ``code`` (for logs, the audit log and an answer's ``reason_code``).

    ``detail`` says what is wrong, for humans (and may be reworded; codes never change meaning). ``str(exc)``
    is the subclass's ``template`` filled in. Picklable with its two arguments, so it can cross process
    boundaries (Celery, multiprocessing).
    """

    template: ClassVar[str] = "{detail}"

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(self.template.format(code=code, detail=detail))

    @property
    def message(self) -> str:
        """The same as ``detail`` (the name the pipeline's refusals used)."""
        return self.detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.detail))


class ProtocolError(CodedError):
    """A message that is not a well-formed message of this protocol.

    ``code`` is a stable token for logs and audit: ``malformed`` (structure, types, values),
    ``bad_version`` (a protocol version this code does not speak), ``bad_base64``, ``too_large``.
    """

    template = "{code}: {detail}"


class TaskRejected(CodedError):
    """A task the trust must not execute. ``code`` is a stable token for the audit log:

    ``bad_signature``, ``wrong_key`` (signed under a key id other than the pinned hub key), ``misaddressed``
    (for another trust), ``expired``, ``not_yet_valid`` (issued too far in the future), ``malformed``.
    """

    template = "task rejected ({code}): {detail}"


class ResultRejected(CodedError):
    """A result envelope the hub must not store. ``code`` is a stable token for logs:

    ``unknown_trust``, ``wrong_key`` (signed under a key id other than the registered one),
    ``bad_signature``, ``decrypt_failed``, ``mismatch`` (inner query/trust differ from the envelope's),
    ``malformed``.
    """

    template = "result rejected ({code}): {detail}"


class QueryRejected(CodedError, UsageError):
    """The researcher's SQL does not satisfy the query policy (exit code 2, a ``UsageError``).

    ``code`` is one of ``omop.sql_policy.REASON_CODES``; ``detail`` (also ``message``) explains what to
    change. ``str(exc)`` is one line suitable for the CLI.
    """

    template = "query rejected ({code}): {detail}"

    def __init__(self, code: str, detail: str) -> None:
        from omop.sql_policy.errors import REASON_CODES  # the policy's table; loaded whenever it rejects

        if code not in REASON_CODES:  # a programming error, but never let it escape as something else
            detail = f"{detail} (unknown reason code {code!r})"
            code = "internal_error"
        super().__init__(code, " ".join(detail.split()))


class NumericRejected(CodedError):
    """A numeric request this cohort cannot answer; ``code`` becomes the trust's ``reason_code``.

    Codes: ``unknown_column``, ``not_numeric``, ``person_id_column``, ``no_numeric_columns``,
    ``histogram_too_fine``, and in dp mode ``bounds_required`` and ``bounds_not_allowed``.
    """


class Inadmissible(CodedError):
    """A task refused before any data is read: ``code`` becomes the answer's ``reason_code``."""


class ExecutionFailed(OmopFedError):
    """The statement did not complete. Everything in it is for the trust's audit log, never for the hub.

    ``cause`` is a short token (``statement_timeout``, ``lock_timeout``, ``temp_file_limit``,
    ``insufficient_privilege``, ``read_only``, ``connection_lost``, ``database_unavailable``,
    ``data_changed``, ``no_row``, ``temp_file_limit_unenforceable``, ``database_error``); ``str(exc)`` a
    one-line description for staff (no SQL, no server text); ``sqlstate`` and ``error_class`` name the
    PostgreSQL error when there was one; ``connection_lost`` tells the executor to reconnect and retry.
    """

    def __init__(
        self,
        cause: str,
        description: str,
        *,
        sqlstate: str | None = None,
        error_class: str | None = None,
        connection_lost: bool = False,
    ) -> None:
        super().__init__(description)
        self.cause = cause
        self.sqlstate = sqlstate
        self.error_class = error_class
        self.connection_lost = connection_lost

    def audit_record(self) -> dict[str, Any]:
        """What the audit log keeps about this failure (the trust's staff read it; the hub never does)."""
        return {
            "cause": self.cause,
            "description": str(self),
            "sqlstate": self.sqlstate,
            "error_class": self.error_class,
        }


class DatabaseUnavailable(OmopFedError):
    """The server could not be reached or refused the credentials."""


class ForeignSchemaError(OmopFedError):
    """Schema ``omop`` already holds objects that are not ours (or ours with other columns)."""


class SchemaMissingError(OmopFedError):
    """Schema ``omop`` or some of its tables do not exist yet."""


class DataPresentError(OmopFedError):
    """The omop tables already hold rows and the user did not ask to replace them."""


class KeyFileError(OmopFedError):
    """A key file is missing, unreadable, too open, corrupt or in conflict. One line naming the file."""


class LocalServiceError(OmopFedError):
    """A local server could not be started or stopped; the message says why in one line."""


class RequestRefused(OmopFedError):
    """A request the hub service does not serve (``hub_broker.service``): ``status`` is the HTTP status
    (401, 403, 404, 400, 413, 503) and ``detail`` the one-line ``{"detail": ...}`` the researcher gets."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = " ".join(detail.split())
        super().__init__(self.detail)


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``str(exc)``, stripped; the exception's type name if it has no text.

    For one-line messages about another library's exception (psycopg, redis, kombu), whose text may run
    over several lines or be empty.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class Invalid(NamedTuple):
    """The first problem a pydantic ``ValidationError`` reports, for a one-line message."""

    loc: tuple[str | int, ...]
    """Where: the path of keys and indexes (empty for the whole object)."""
    kind: str
    """Pydantic's error type, e.g. ``extra_forbidden`` or ``greater_than_equal``."""
    message: str
    """Pydantic's message, without the ``Value error, `` prefix it gives a validator's ``ValueError``."""

    def where(self, whole: str) -> str:
        """The dotted path (``privacy.epsilon_per_query``), or ``whole`` for the object itself."""
        return ".".join(str(part) for part in self.loc) or whole


def first_invalid(exc: ValidationError) -> Invalid:
    """The first problem of ``exc`` (pydantic lists them in field order), without the input's value."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic never raises an empty ValidationError
        return Invalid((), "invalid", first_line(exc))
    first = errors[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return Invalid(tuple(first.get("loc", ())), str(first.get("type", "invalid")), message)
