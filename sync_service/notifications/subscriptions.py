"""Who receives the monthly management pack by email: finance, and marketers (a region's marketing lead).

A person subscribes or unsubscribes themselves; each change is appended (`PackSubscription`) and
their newest row is in force, so who received which month's pack can always be told. Finance
receive the whole organisation's pack, a marketer the pack of the teams they may see, built for
them. Subscribing needs a mail server and an address the pack can go to; a refusal names the field,
the rule and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from sync_service.access.auth import require_plan_reader
from sync_service.notifications.addresses import address_of
from sync_service.platform.errors import Conflict
from sync_service.platform.storage import PackSubscription, Role, Store, User

FIX_ADDRESS = (
    'set one on the Management packs page, or with PUT /api/v1/me/notifications {"email": "you@example.com", '
    '"enabled": true}, then subscribe again'
)


def _newest() -> Any:
    """Each subscriber's newest row: the subscription in force."""
    newest = select(func.max(PackSubscription.id)).group_by(PackSubscription.user_id)
    return select(PackSubscription).where(PackSubscription.id.in_(newest))


def subscribed(session: Session, user_id: int) -> bool:
    """Whether the user receives the pack now."""
    row = session.scalars(
        select(PackSubscription).where(PackSubscription.user_id == user_id).order_by(PackSubscription.id.desc())
    ).first()
    return bool(row and row.subscribed)


def subscribers(session: Session) -> list[User]:
    """Everyone who receives the pack (finance and marketers), with their teams loaded, by id."""
    ids = [row.user_id for row in session.scalars(_newest()) if row.subscribed]
    if not ids:
        return []
    query = (
        select(User)
        .where(User.id.in_(ids), User.role.in_([Role.FINANCE, Role.MARKETER]))
        .options(selectinload(User.teams))
        .order_by(User.id)
    )
    return list(session.scalars(query))


def state(session: Session, user: User) -> dict[str, Any]:
    """The user's subscription as the API answers it: on or off, and where the pack goes."""
    me = session.get(User, user.id)
    return {"subscribed": subscribed(session, user.id), "address": address_of(me) if me else None}


def subscribe(store: Store, config: Mapping[str, Any], user: User, on: bool) -> dict[str, Any]:
    """Start (`on`) or stop the user's monthly pack by email; a change is appended, the same choice is no change.

    Refused for admins (403), and (409) when the server sends no email or the user has no address for it.
    """
    require_plan_reader(user)
    with store.transaction() as session:
        me = session.get(User, user.id)
        if on:
            if not config.get("SMTP_HOST"):
                raise Conflict(
                    "subscribed: this server sends no email (PLANSHEET_SMTP_HOST is not set), so the pack cannot be "
                    "sent to you; download it from the Management packs page, or ask whoever runs Plansheet to set "
                    "the mail server",
                    issues=[_issue("subscribed", "subscription.mail_server", "this server sends no email")],
                )
            if address_of(me) is None:
                why = "your emails are turned off" if not me.notify else "your name is not an address and none is set"
                raise Conflict(
                    f"email: the pack needs an address to go to ({why}); {FIX_ADDRESS}",
                    issues=[_issue("email", "subscription.address", why)],
                )
        if subscribed(session, user.id) != on:
            session.add(PackSubscription(user_id=user.id, subscribed=on))
            session.flush()
        return state(session, user)


def _issue(at: str, rule: str, message: str) -> dict[str, str]:
    return {"at": at, "rule": rule, "message": message}
