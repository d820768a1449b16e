"""Closed fiscal years: read-only, still readable everywhere.

Finance closes a year once every month of it is locked and its month-end accruals are closed
(`sync_service.planning.years`). From then on every change that belongs to the year is refused
(409, naming the year, who closed it and when, and what to do instead), wherever it comes from:
each writing function asks `require_open` inside its own transaction, so the API, the dashboard,
the command line and the background jobs all meet the same refusal.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sync_service.platform.errors import Conflict
from sync_service.platform.storage import User, YearClose, aware


def closed(session: Session, year: int) -> YearClose | None:
    """The close of fiscal year `year`, or None while it is open."""
    return session.get(YearClose, year)


def require_open(session: Session, year: int, what: str) -> None:
    """409 when fiscal year `year` is closed: `what` (e.g. "submit a plan") would change a read-only year."""
    found = closed(session, year)
    if found is None:
        return
    by = session.get(User, found.user_id)
    raise Conflict(
        f"FY{year} is closed (by {by.name if by else 'finance'} on {aware(found.closed_at).date().isoformat()}): "
        f"it is read-only, so nobody may {what} in it; work in a year that is open (?year=)",
        closed_year=year,
    )
