"""The tail every import ends with, in the import's own transaction: rows, audit event, idempotency, job record.

Actual spend, CRM results, purchase orders and invoices each read and match their own rows; what
they store and answer then is done here, once: the rows in one bulk insert, the audit event, the
answer kept for a retried `Idempotency-Key`, and a background job's success (`stored`), all in the
transaction that stores the import, so they land together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from sync_service.platform.idempotency import Idempotency, remember
from sync_service.platform.storage import AuditEvent, Base, User

Stored = Callable[[Session, dict[str, Any]], None]  # a job's `succeed`: records its result in the transaction


def insert_rows(session: Session, model: type[Base], rows: Iterable[Mapping[str, Any]]) -> None:
    """The import's rows in one bulk insert (nothing for none)."""
    rows = list(rows)
    if rows:
        session.execute(insert(model), rows)


def finish(
    session: Session,
    user: User,
    idem: Idempotency | None,
    status: int,
    answer: dict[str, Any],
    stored: Stored | None,
    audit: tuple[str, str, dict[str, Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Record the import's audit event (action, target, detail), its answer for a retry, a job's success."""
    if audit is not None:
        action, target, detail = audit
        session.add(AuditEvent(user_id=user.id, action=action, target=target, detail=detail))
    remember(session, user, idem, status, answer)
    if stored is not None:
        stored(session, answer)
    return status, answer
