"""Idempotency-Key: a retried request gets the first answer again and creates nothing new.

The first answer is stored in the same transaction as what the request created, so a
crash cannot leave one without the other; two concurrent first requests meet the primary
key, and the loser replays the winner's answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from sync_service.platform.errors import Unprocessable
from sync_service.platform.storage import IdempotencyRecord, Store, User

MAX_KEY = 200


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    fingerprint: str  # what the request asked for; the same key must not be reused for anything else

    @classmethod
    def of(cls, key: str, *parts: bytes | str) -> Idempotency:
        digest = hashlib.sha256()
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))  # the length first: parts never run into each other
            digest.update(data)  # on its own, so a 20 MiB upload is hashed where it is, never copied
        return cls(key.strip()[:MAX_KEY], digest.hexdigest())


def replay(store: Store, user: User, idem: Idempotency) -> tuple[int, dict[str, Any]] | None:
    """The stored answer for this key, or None; 422 when the key was used for a different request."""
    with store.reading() as session:
        record = session.get(IdempotencyRecord, (user.id, idem.key))
        if record is None:
            return None
        if record.fingerprint != idem.fingerprint:
            raise Unprocessable(
                "this Idempotency-Key was already used for a different request; use a new key for a new request"
            )
        return record.status, record.body


def remember(session: Session, user: User, idem: Idempotency | None, status: int, body: dict[str, Any]) -> None:
    """Store the answer with the work it describes (call inside the work's transaction)."""
    if idem is not None:
        session.add(
            IdempotencyRecord(user_id=user.id, key=idem.key, fingerprint=idem.fingerprint, status=status, body=body)
        )
