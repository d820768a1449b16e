"""API tokens: `ps_<id>_<secret>`, stored as the SHA-256 of the secret, compared in constant time."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_service.access.approvals import grant
from sync_service.platform.errors import Forbidden, Unauthorized
from sync_service.platform.storage import ApiToken, AuditEvent, Role, Team, TokenScope, User, aware, utcnow

PREFIX = "ps_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session,
    name: str,
    role: Role | str,
    teams: list[str] = (),
    actor: int | None = None,
    approves: list[dict[str, str]] = (),
    config: Any = None,
) -> str:
    """Create the user `name` (or reuse it) with `role` and `teams`, and return a new token for it.

    `actor` is the admin who did it (None: the command line). `approves` gives the user approval
    steps of the organisation's chains ({"step", "region" or "*"}; `config` is the organisation's
    configuration, which names them); ValueError naming a step or region it does not know.
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
    if approves:
        grant(session, user, list(approves), config.approvals, config.regions)
    session.add(ApiToken(id=token_id, user_id=user.id, secret_hash=_hash(secret)))
    session.add(
        AuditEvent(
            user_id=actor if actor is not None else user.id,
            action="token.create",
            target=f"user:{user.name}",
            detail={"role": role.value, "teams": list(teams), "token": token_id, "approves": list(approves)},
        )
    )
    return f"{PREFIX}{token_id}_{secret}"


def user_for_token(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None (unknown, malformed, revoked, expired or wrong secret)."""
    try:
        return resolve_token(session, token, accepts=tuple(TokenScope))
    except Unauthorized:
        return None


def resolve_token(session: Session, token: str, accepts: tuple[TokenScope, ...], what: str = "this") -> User:
    """The user of a bearer token, if the token may be used for an operation that `accepts` its scope.

    The one place a token is checked: 401 when it is not valid (naming why when it expired), 403
    naming its scope when it is valid but scoped to less than the operation (`what`) needs.
    """
    if not token.startswith(PREFIX) or token.count("_") < 2:
        raise Unauthorized(INVALID)
    token_id, _, secret = token[len(PREFIX) :].partition("_")
    row = session.get(ApiToken, token_id)
    expected = row.secret_hash if row is not None else _hash("")
    valid = hmac.compare_digest(expected, _hash(secret))  # compared even when the id is unknown
    if row is None or not valid or row.revoked_at is not None:
        raise Unauthorized(INVALID)
    if row.expires_at is not None and aware(row.expires_at) <= utcnow():
        raise Unauthorized(
            f"the API token expired at {aware(row.expires_at):%Y-%m-%d %H:%M} UTC; "
            "get a new one on the dashboard's page 'Token for the add-ins'"
        )
    if row.scope not in accepts:
        raise Forbidden(
            f"this token has the scope '{row.scope}' ({SCOPE_MEANS.get(row.scope, row.scope)}), "
            f"which does not allow {what}; use a token of your own with the scope 'full'"
        )
    return row.user


INVALID = "the API token is not valid (unknown, revoked or mistyped)"
SCOPE_MEANS = {
    TokenScope.FULL: "everything the user's role allows",
    TokenScope.FUNCTIONS: "the spreadsheet functions and reading the master only",
}


def create_addin_token(session: Session, user: User, lifetime: dt.timedelta) -> tuple[str, dt.datetime]:
    """A new token of `user` for the add-ins: read-only (functions and the master), expiring after `lifetime`.

    Read-only so that a token pasted into a workbook, which travels with it, cannot submit,
    approve or administer; expiring so that one forgotten in a shared file stops working.
    """
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    expires_at = utcnow() + lifetime
    session.add(
        ApiToken(
            id=token_id,
            user_id=user.id,
            secret_hash=_hash(secret),
            scope=TokenScope.FUNCTIONS.value,
            expires_at=expires_at,
        )
    )
    session.add(
        AuditEvent(
            user_id=user.id,
            action="token.create",
            target=f"user:{user.name}",
            detail={"token": token_id, "scope": TokenScope.FUNCTIONS.value, "expires_at": expires_at.isoformat()},
        )
    )
    return f"{PREFIX}{token_id}_{secret}", expires_at


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
                "scope": t.scope,
                "expires_at": aware(t.expires_at).isoformat() if t.expires_at else None,
            }
        )
    return [
        {"name": u.name, "role": u.role, "teams": sorted(t.id for t in u.teams), "tokens": by_user.get(u.id, [])}
        for u in users
    ]
