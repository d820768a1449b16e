"""Dashboard passwords: stored as salted scrypt hashes, checked in the same time whether the user exists or not."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from sync_service.platform.storage import User

MIN_LENGTH = 10
_DUMMY_HASH = generate_password_hash("not a password")  # checked when there is no user, so timing tells nothing


def set_password(session_: Any, name: str, password: str) -> None:
    """Give the user `name` a dashboard password (stored as a salted scrypt hash)."""
    user = session_.scalar(select(User).where(User.name == name))
    if user is None:
        raise LookupError(f"there is no user {name!r}; create one with plansheet token create")
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    user.password_hash = generate_password_hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` hashes (False without one, after the same work)."""
    return check_password_hash(stored or _DUMMY_HASH, password) and stored is not None
