"""Where a person's email goes: the address they set, else their name when it is one (as single sign-on names)."""

from __future__ import annotations

from sync_service.platform.storage import User


def address_of(user: User) -> str | None:
    """Where `user`'s email goes: the address they set, else their name when it is one; None: turned off or none."""
    if not user.notify:
        return None
    if user.email:
        return user.email
    return user.name if "@" in user.name else None
