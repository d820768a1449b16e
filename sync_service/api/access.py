"""The access routes: users, API tokens, and each person's notification settings."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from sync_service.access import auth
from sync_service.api import contracts as c
from sync_service.api.base import admin_gate, bp
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.notifications import notices as notifications
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import (
    NotFound,
    ServiceError,
    Unprocessable,
)
from sync_service.platform.storage import Team, User


def _notifications_of(user: User) -> dict[str, Any]:
    return {"email": user.email, "address": notifications.address_of(user), "enabled": user.notify}


@operation(bp, "GET", "/api/v1/me/notifications", "The caller's notification settings", response=c.NotificationsAnswer)
def my_notifications() -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify(_notifications_of(session.get(User, current_user().id)))


@operation(
    bp,
    "PUT",
    "/api/v1/me/notifications",
    "Set where the caller's notification emails go, or turn them off or on",
    response=c.NotificationsAnswer,
    body=c.NotificationsBody,
)
def set_my_notifications(body: c.NotificationsBody) -> ResponseReturnValue:
    sent = body.model_dump(exclude_unset=True)
    with app_store().transaction() as session:
        me = session.get(User, current_user().id, with_for_update=True)
        if "email" in sent:
            me.email = sent["email"]
        if sent.get("enabled") is not None:
            me.notify = sent["enabled"]
        return jsonify(_notifications_of(me))


@operation(
    bp,
    "GET",
    "/api/v1/users",
    "Every user with role, teams and tokens (admins)",
    response=c.Users,
    errors=(403,),
    gate=admin_gate,
)
def users() -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify({"users": auth.users_view(session)})


@operation(
    bp,
    "POST",
    "/api/v1/tokens",
    "Create a user's API token (admins); the token is in this answer only",
    response=c.TokenCreated,
    status=201,
    errors=(403, 422),
    body=c.TokenBody,
    gate=admin_gate,
)
def create_token(body: c.TokenBody) -> ResponseReturnValue:
    """A new token (admin): {"name", "role", "teams"}; the token is in this answer only."""
    user = current_user()
    name = body.name.strip()
    if not name:
        raise ServiceError('send {"name": "maria@example.com", "role": "marketer", "teams": ["EMEA-ENTERPRISE"]}')
    try:
        with app_store().transaction() as session:
            token = auth.create_token(
                session,
                name,
                body.role,
                body.teams,
                actor=user.id,
                approves=[g.model_dump() for g in body.approves],
                config=app_schema().config,
            )
    except ValueError as exc:
        raise Unprocessable(str(exc), issues=[{"at": "approves", "message": str(exc)}]) from None
    except LookupError as exc:
        with app_store().reading() as session:
            known = ", ".join(session.scalars(select(Team.id).order_by(Team.id)))
        raise Unprocessable(f"{exc.args[0]}; the teams are {known}") from None
    approves = [g.model_dump() for g in body.approves]
    return jsonify({"name": name, "role": body.role, "teams": body.teams, "approves": approves, "token": token}), 201


@operation(
    bp,
    "POST",
    "/api/v1/tokens/<token_id>/revoke",
    "Revoke a token (kept for the audit)",
    response=c.Revoked,
    errors=(403, 404),
    gate=admin_gate,
)
def revoke_token(token_id: str) -> ResponseReturnValue:
    user = current_user()
    with app_store().transaction() as session:
        row = auth.revoke_token(session, token_id, user.id)
        if row is None:
            raise NotFound(f"there is no token {token_id}")
        return jsonify({"id": row.id, "revoked_at": row.revoked_at.isoformat()})
