"""The hub store (SQLAlchemy 2): queries, each addressed trust's status and answer, the pooled result.

SQLite file by default, any SQLAlchemy URL (PostgreSQL in production). Each (query id, trust id) answer is
stored once whatever the number of deliveries: an answer only moves a row out of ``pending``, and a
duplicate finds it already moved. Messages the reducer refused are kept (reason only, never content) so the
operator can count them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

from omop.dburl import redact, sqlalchemy_url
from omop.errors import OmopFedError
from omop.states import QueryStatus, Recorded, TaskKind, TrustStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class _UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets time zones: store UTC, hand back aware datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else aware(value).astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else aware(value)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Query(Base):
    __tablename__ = "queries"

    query_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default=TaskKind.COHORT_STATS)
    sql: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    threshold: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(_UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=QueryStatus.PENDING)
    pooled: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    finalized_at: Mapped[datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    answers: Mapped[list[TrustAnswer]] = relationship(
        back_populates="query", order_by="TrustAnswer.trust_id", lazy="selectin"
    )


class TrustAnswer(Base):
    __tablename__ = "trust_answers"

    query_id: Mapped[str] = mapped_column(ForeignKey("queries.query_id"), primary_key=True)
    trust_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=TrustStatus.PENDING)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    query: Mapped[Query] = relationship(back_populates="answers")


class SentTask(Base):
    """The signed task the hub published to one trust, kept so that a task lost in transit can be re-sent.

    (A worker killed between taking a task off its queue and recording it as in flight loses it: the
    broker then holds it nowhere. The reducer notices and publishes the same signed task again; the
    trust's ledger makes sure it never runs twice.)
    """

    __tablename__ = "sent_tasks"

    query_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trust_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wire: Mapped[dict[str, Any]] = mapped_column(JSON)
    resent: Mapped[int] = mapped_column(Integer, default=0)


class RefusedMessage(Base):
    __tablename__ = "refused_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    code: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    query_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trust_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class User(Base):
    """A researcher or administrator of the hub service (``hub_broker.accounts``); only the token's hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class QueryOwner(Base):
    """Who submitted a query through the hub service (queries submitted on the hub host have none).

    A table of its own rather than a column of ``queries``: a store created before accounts existed gets it
    from ``create_all`` without a migration.
    """

    __tablename__ = "query_owners"

    query_id: Mapped[str] = mapped_column(ForeignKey("queries.query_id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class HubStore:
    """Opens the database and creates the tables; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = sqlalchemy_url(url)
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
            db_path = self.url.split("///", 1)[-1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
            if self.url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(self.engine)
        except (SQLAlchemyError, ValueError) as exc:
            raise OmopFedError(f"cannot open the hub store {redact(self.url)}: {_short(exc)}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise OmopFedError(f"hub store unavailable ({redact(self.url)}): {_short(exc)}") from exc

    def create_query(
        self,
        *,
        query_id: str,
        project_id: str,
        sql: str,
        trusts: Sequence[str],
        threshold: int,
        deadline_at: datetime,
        kind: TaskKind = TaskKind.COHORT_STATS,
        options: dict[str, Any] | None = None,
        submitted_by: int | None = None,
    ) -> None:
        """Record a query, every addressed trust ``pending``; ``submitted_by`` (a user id) in the same
        transaction, so a query of the hub service is never without its owner."""
        with self.session() as s:
            q = Query(
                query_id=query_id,
                project_id=project_id,
                sql=sql,
                threshold=threshold,
                deadline_at=deadline_at,
                kind=kind,
                options=options or {},
            )
            q.answers = [TrustAnswer(trust_id=t) for t in trusts]
            s.add(q)
            if submitted_by is not None:
                s.flush()
                s.add(QueryOwner(query_id=query_id, user_id=submitted_by))

    def remember_tasks(self, query_id: str, wires: dict[str, dict[str, Any]]) -> None:
        with self.session() as s:
            for trust_id, wire in wires.items():
                s.merge(SentTask(query_id=query_id, trust_id=trust_id, wire=wire, resent=0))

    def unanswered_tasks(self) -> list[SentTask]:
        """Signed tasks of pending queries whose trust has not answered yet."""
        with self.session() as s:
            rows = s.execute(
                select(SentTask)
                .join(
                    TrustAnswer,
                    (TrustAnswer.query_id == SentTask.query_id) & (TrustAnswer.trust_id == SentTask.trust_id),
                )
                .join(Query, Query.query_id == SentTask.query_id)
                .where(Query.status == QueryStatus.PENDING, TrustAnswer.status == TrustStatus.PENDING)
            )
            return list(rows.scalars())

    def count_resend(self, query_id: str, trust_id: str) -> None:
        with self.session() as s:
            task = s.get(SentTask, (query_id, trust_id))
            if task is not None:
                task.resent += 1

    def get(self, query_id: str) -> Query | None:
        with self.session() as s:
            return s.get(Query, query_id)

    def count_queries(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(Query)) or 0)

    def recent(self, limit: int = 20) -> list[Query]:
        with self.session() as s:
            return list(s.scalars(select(Query).order_by(Query.created_at.desc()).limit(limit)))

    def record_answer(
        self,
        query_id: str,
        trust_id: str,
        status: TrustStatus | str,
        detail: str | None,
        result: dict[str, Any] | None,
    ) -> Recorded:
        """Store an answer if this (query, trust) is still pending, in one transaction.

        ``status`` is a ``TrustStatus`` (or its value).

        ``stored``; ``duplicate`` (already answered, or too late: counted and ignored); ``unknown`` (no
        such query was sent to this trust).
        """
        with self.session() as s:
            counted = s.execute(
                update(TrustAnswer)
                .where(TrustAnswer.query_id == query_id, TrustAnswer.trust_id == trust_id)
                .values(deliveries=TrustAnswer.deliveries + 1)
            )
            if not counted.rowcount:  # type: ignore[attr-defined]
                return Recorded.UNKNOWN
            moved = s.execute(
                update(TrustAnswer)
                .where(
                    TrustAnswer.query_id == query_id,
                    TrustAnswer.trust_id == trust_id,
                    TrustAnswer.status == TrustStatus.PENDING,
                )
                .values(status=TrustStatus(status), detail=detail, result=result, received_at=utcnow())
            )
            return Recorded.STORED if moved.rowcount else Recorded.DUPLICATE  # type: ignore[attr-defined]

    def due_query_ids(self, now: datetime) -> list[str]:
        """Queries still pending whose deadline has passed (the reducer finalises them)."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Query.query_id).where(
                        Query.status == QueryStatus.PENDING, Query.deadline_at <= now
                    )
                )
            )

    def mark_timeouts(self, query_id: str, detail: str) -> None:
        with self.session() as s:
            s.execute(
                update(TrustAnswer)
                .where(TrustAnswer.query_id == query_id, TrustAnswer.status == TrustStatus.PENDING)
                .values(status=TrustStatus.TIMEOUT, detail=detail)
            )

    def save_pooled(self, query_id: str, status: QueryStatus, pooled: dict[str, Any]) -> bool:
        """Write the final state once; False when another process finalised first."""
        with self.session() as s:
            moved = s.execute(
                update(Query)
                .where(Query.query_id == query_id, Query.status == QueryStatus.PENDING)
                .values(status=status, pooled=pooled, finalized_at=utcnow())
            )
            return bool(moved.rowcount)  # type: ignore[attr-defined]

    def refuse(
        self, code: str, detail: str, query_id: str | None = None, trust_id: str | None = None
    ) -> None:
        with self.session() as s:
            s.add(RefusedMessage(code=code, detail=detail[:500], query_id=query_id, trust_id=trust_id))

    def refusals_by_trust(self) -> dict[str, tuple[int, str | None]]:
        """Trust id -> (messages refused from it, the last refusal's reason code and detail)."""
        with self.session() as s:
            rows = list(s.scalars(select(RefusedMessage).order_by(RefusedMessage.id)))
        out: dict[str, tuple[int, str | None]] = {}
        for row in rows:
            if row.trust_id is None:
                continue
            count, _ = out.get(row.trust_id, (0, None))
            out[row.trust_id] = (count + 1, f"{row.code}: {row.detail}")
        return out

    def refused(self) -> list[RefusedMessage]:
        with self.session() as s:
            return list(s.scalars(select(RefusedMessage).order_by(RefusedMessage.id)))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: no fsync per commit and never corrupt; a power cut can lose the last answers, which the
    # trusts re-send on redelivery (they keep every sealed answer in their ledger).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
