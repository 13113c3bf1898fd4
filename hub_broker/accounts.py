"""Researchers, projects and memberships of the hub service, and the decisions made about them.

The tables live in the hub store (``hub_broker.store``: ``users``, ``projects``, ``memberships``,
``query_owners``), next to the queries, so one backup holds everything. This module has two halves:

* **pure functions**, tested without a database or a server: token generation, hashing and checking, name
  checks, and the authorization decisions (:func:`can_submit`, :func:`can_see`);
* :class:`Accounts`, the few short transactions over the store that the admin commands
  (``hub_broker.accounts_cli``) and the service (``hub_broker.service``) need.

**Tokens.** A personal API token is ``secrets.token_urlsafe(32)``: 32 random bytes, 256 bits. It is shown
once, when the user is added, and only its SHA-256 is stored. A plain, unsalted, fast hash is enough here,
unlike for passwords: salts and slow hashes (bcrypt, scrypt, argon2) exist to make guessing *low-entropy*
secrets expensive, and nobody can enumerate 2**256 tokens however fast the hash is. A fast hash also lets
the service find the user by the hash itself (a unique, indexed column) instead of trying every user. The
stored hash is then compared with ``hmac.compare_digest`` so that the comparison time says nothing about
how many characters matched; the database lookup cannot leak anything useful either, since an attacker
does not control the SHA-256 of what they send. A token is never logged, never stored in clear, and the
only place it is printed is ``omopfed hub user add``'s output.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub_broker.store import HubStore, Membership, Project, Query, QueryOwner, User
from omop.errors import UsageError
from omop.protocol import PROJECT_ID_PATTERN

TOKEN_BYTES = 32
USER_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}"


# -- pure: tokens and names --------------------------------------------------------------------------------


def new_token() -> str:
    """A new personal API token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 of ``token``, hex: all the store keeps (the module docstring says why that is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` is the one whose hash is ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_token(token).encode(), stored_hash.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for a missing or other header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def check_user_name(name: str) -> str:
    if not re.fullmatch(USER_NAME_PATTERN, name):
        raise UsageError(
            f"{name!r} is not a user name: 1 to 64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_project_id(project_id: str) -> str:
    if not re.fullmatch(PROJECT_ID_PATTERN, project_id):
        raise UsageError(
            f"{project_id!r} is not a project id: 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return project_id


# -- pure: who may do what ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Researcher:
    """An authenticated user as the service's decisions see it."""

    user_id: int
    name: str
    is_admin: bool
    disabled: bool
    projects: frozenset[str]


def can_submit(researcher: Researcher, project_id: str) -> bool:
    """A researcher submits only for a project they are a member of; administrators too.

    (Being an administrator of the hub is not a governance approval: the trusts charge budgets and check
    ``allowed_projects`` per project, so an administrator who wants to ask adds themselves first.)
    """
    return not researcher.disabled and project_id in researcher.projects


def can_see(researcher: Researcher, owner_id: int | None) -> bool:
    """A researcher sees their own queries; an administrator sees every query, including those with no
    owner (submitted on the hub host with ``omopfed hub submit``)."""
    if researcher.disabled:
        return False
    return researcher.is_admin or (owner_id is not None and owner_id == researcher.user_id)


def first_sql_line(sql: str) -> str:
    """The first non-blank line of a query's SQL, for lists."""
    return next((line.strip() for line in sql.splitlines() if line.strip()), "")


# -- the store ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserInfo:
    name: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    projects: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "is_admin": self.is_admin,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "projects": list(self.projects),
        }


@dataclass(frozen=True)
class QuerySummary:
    query_id: str
    created_at: datetime
    project: str
    status: str
    sql: str
    submitted_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "created_at": self.created_at.isoformat(),
            "project": self.project,
            "status": self.status,
            "sql": self.sql,
            "submitted_by": self.submitted_by,
        }


class Accounts:
    """Users, projects and memberships in the hub store; every method is one short transaction."""

    def __init__(self, store: HubStore) -> None:
        self.store = store

    def add_user(self, name: str, *, admin: bool = False) -> str:
        """Create a user and return their token: the only time it exists outside the caller's hands."""
        check_user_name(name)
        token = new_token()
        try:
            with self.store.session() as s:
                if s.scalar(select(User.id).where(User.name == name)) is not None:
                    raise UsageError(f"user {name!r} exists already")
                s.add(User(name=name, is_admin=admin, token_hash=hash_token(token)))
        except IntegrityError as exc:  # a concurrent add of the same name
            raise UsageError(f"user {name!r} exists already") from exc
        return token

    def users(self) -> list[UserInfo]:
        with self.store.session() as s:
            rows = list(s.scalars(select(User).order_by(User.name)))
            member = s.execute(
                select(Membership.user_id, Membership.project_id).order_by(Membership.project_id)
            ).all()
        projects: dict[int, list[str]] = {}
        for user_id, project_id in member:
            projects.setdefault(user_id, []).append(project_id)
        return [
            UserInfo(u.name, u.is_admin, u.disabled, u.created_at, tuple(projects.get(u.id, ())))
            for u in rows
        ]

    def disable_user(self, name: str) -> None:
        """Disable a user: their token stops working at once. Their queries stay in the store."""
        with self.store.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise UsageError(f"no user {name!r} (omopfed hub user list)")
            user.disabled = True

    def add_project(self, project_id: str) -> None:
        check_project_id(project_id)
        try:
            with self.store.session() as s:
                if s.get(Project, project_id) is not None:
                    raise UsageError(f"project {project_id!r} exists already")
                s.add(Project(project_id=project_id))
        except IntegrityError as exc:
            raise UsageError(f"project {project_id!r} exists already") from exc

    def projects(self) -> list[tuple[str, datetime, tuple[str, ...]]]:
        """Each project: its id, when it was added, and its members' names."""
        with self.store.session() as s:
            rows = list(s.scalars(select(Project).order_by(Project.project_id)))
            member = s.execute(
                select(Membership.project_id, User.name)
                .join(User, User.id == Membership.user_id)
                .order_by(User.name)
            ).all()
        names: dict[str, list[str]] = {}
        for project_id, name in member:
            names.setdefault(project_id, []).append(name)
        return [(p.project_id, p.created_at, tuple(names.get(p.project_id, ()))) for p in rows]

    def add_member(self, project_id: str, name: str) -> None:
        with self.store.session() as s:
            if s.get(Project, project_id) is None:
                raise UsageError(f"no project {project_id!r} (omopfed hub project add {project_id})")
            user_id = s.scalar(select(User.id).where(User.name == name))
            if user_id is None:
                raise UsageError(f"no user {name!r} (omopfed hub user list)")
            if s.get(Membership, (project_id, user_id)) is not None:
                raise UsageError(f"{name!r} is a member of {project_id!r} already")
            s.add(Membership(project_id=project_id, user_id=user_id))

    def authenticate(self, token: str | None) -> Researcher | None:
        """The enabled user whose token this is, or None (no token, an unknown one, a disabled user)."""
        if not token:
            return None
        digest = hash_token(token)
        with self.store.session() as s:
            user = s.scalar(select(User).where(User.token_hash == digest))
            if user is None or not token_matches(token, user.token_hash) or user.disabled:
                return None
            projects = frozenset(
                s.scalars(select(Membership.project_id).where(Membership.user_id == user.id))
            )
            return Researcher(user.id, user.name, user.is_admin, user.disabled, projects)

    def owner_of(self, query_id: str) -> int | None:
        with self.store.session() as s:
            return s.scalar(select(QueryOwner.user_id).where(QueryOwner.query_id == query_id))

    def queries_of(self, researcher: Researcher, *, limit: int, offset: int) -> list[QuerySummary]:
        """The researcher's queries (an administrator's: every query), newest first."""
        with self.store.session() as s:
            stmt = (
                select(Query, User.name)
                .outerjoin(QueryOwner, QueryOwner.query_id == Query.query_id)
                .outerjoin(User, User.id == QueryOwner.user_id)
                .order_by(Query.created_at.desc(), Query.query_id)
                .limit(limit)
                .offset(offset)
            )
            if not researcher.is_admin:
                stmt = stmt.where(QueryOwner.user_id == researcher.user_id)
            rows = s.execute(stmt).all()
        return [
            QuerySummary(q.query_id, q.created_at, q.project_id, q.status, first_sql_line(q.sql), owner)
            for q, owner in rows
        ]
