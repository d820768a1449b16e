"""API tokens: `ps_<id>_<secret>`, stored as the SHA-256 of the secret, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_service.errors import Forbidden
from sync_service.storage import ApiToken, AuditEvent, Role, Team, User, utcnow

PREFIX = "ps_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, name: str, role: Role | str, teams: list[str] = (), actor: int | None = None) -> str:
    """Create the user `name` (or reuse it) with `role` and `teams`, and return a new token for it.

    `actor` is the admin who did it (None: the command line).
    """
    role = Role(role)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role.value)
        session.add(user)
    user.role = role.value
    for team_id in teams:
        team = session.get(Team, team_id)
        if team is None:
            raise LookupError(f"unknown team {team_id!r}")
        if team not in user.teams:
            user.teams.append(team)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    session.flush()
    session.add(ApiToken(id=token_id, user_id=user.id, secret_hash=_hash(secret)))
    session.add(
        AuditEvent(
            user_id=actor if actor is not None else user.id,
            action="token.create",
            target=f"user:{user.name}",
            detail={"role": role.value, "teams": list(teams), "token": token_id},
        )
    )
    return f"{PREFIX}{token_id}_{secret}"


def user_for_token(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None (unknown, malformed, revoked or wrong secret)."""
    if not token.startswith(PREFIX) or token.count("_") < 2:
        return None
    token_id, _, secret = token[len(PREFIX) :].partition("_")
    row = session.get(ApiToken, token_id)
    expected = row.secret_hash if row is not None else _hash("")
    valid = hmac.compare_digest(expected, _hash(secret))  # compared even when the id is unknown
    if row is None or not valid or row.revoked_at is not None:
        return None
    return row.user


def can_see(user: User, team: str) -> bool:
    """Finance sees every team's plan, a marketer its own teams'; admins manage users, not plans."""
    return user.role == Role.FINANCE or (user.role == Role.MARKETER and any(t.id == team for t in user.teams))


def visible_teams(user: User) -> frozenset[str] | None:
    """The teams whose plans, lines and figures `user` may see: None for all (finance); 403 for admins.

    The one scoping rule: every view (API, workbooks, dashboard, Google push, live functions) asks here.
    """
    require_plan_reader(user)
    if user.role == Role.FINANCE:
        return None
    return frozenset(t.id for t in user.teams)


def visible_regions(user: User, regions: Iterable[str]) -> tuple[str, ...]:
    """The regions whose allocations `user` may read: all for finance, their teams' regions for a marketer."""
    if user.role == Role.FINANCE:
        return tuple(regions)
    mine = {t.region for t in user.teams}
    return tuple(r for r in regions if r in mine)


def require_finance(user: User, what: str) -> None:
    """403 unless `user` is finance; `what` completes "only finance ...", e.g. "sets allocations"."""
    if user.role != Role.FINANCE:
        raise Forbidden(f"only finance {what}")


def require_plan_reader(user: User) -> None:
    """403 for admins: they manage users and tokens and read the audit log, not the plans."""
    if user.role not in (Role.FINANCE, Role.MARKETER):
        raise Forbidden("plans and the master budget are for marketers and finance; admins manage users and tokens")


def revoke_token(session: Session, token_id: str, actor: int | None) -> ApiToken | None:
    """Revoke a token (kept, with the time, for the audit); None if there is no such token."""
    row = session.get(ApiToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(
            AuditEvent(user_id=actor, action="token.revoke", target=f"user:{row.user.name}", detail={"token": token_id})
        )
    return row


def users_view(session: Session) -> list[dict[str, object]]:
    """Every user with role, teams and tokens (ids and dates only: secrets are never stored)."""
    users = session.scalars(select(User).order_by(User.name))
    tokens = session.scalars(select(ApiToken).order_by(ApiToken.created_at))
    by_user: dict[int, list[dict[str, object]]] = {}
    for t in tokens:
        by_user.setdefault(t.user_id, []).append(
            {
                "id": t.id,
                "created_at": t.created_at.isoformat(),
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
        )
    return [
        {"name": u.name, "role": u.role, "teams": sorted(t.id for t in u.teams), "tokens": by_user.get(u.id, [])}
        for u in users
    ]
