"""The fiscal years the organisation file describes, and closing one.

A year is closed by finance once every one of its months is locked and its month-end accruals
are closed (in order, each month's reversal booked in the month after it; the last one's in the
next year). Closing it is audited and final: the year stays readable everywhere (its master,
versions, budget, imports, accruals and journals), and every change to it is refused
(`sync_service.platform.years`). Budget left over moves to the next year only when finance asks,
as a transfer in that year.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sheet_templates.errors import ConfigError
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance, require_plan_reader
from sync_service.planning.periods import locked_months
from sync_service.platform import years
from sync_service.platform.errors import Conflict, NotFound
from sync_service.platform.storage import AccrualClose, AuditEvent, Store, User, YearClose, aware


def _state(session: Session, schema: PlanSchema, year: int) -> dict[str, Any]:
    names = [c.name for c in schema.month_columns]
    locked = locked_months(session, year)
    accrued = set(session.scalars(select(AccrualClose.month).where(AccrualClose.fiscal_year == year)))
    found = years.closed(session, year)
    by = session.get(User, found.user_id) if found else None
    return {
        "year": year,
        "label": f"FY{year}",
        "current": year == schema.config.fiscal_year,  # the year a request is about unless it names another
        "months_locked": [m for m in names if m in locked],
        "accruals_closed": [m for m in names if m in accrued],
        "closed": None
        if found is None
        else {"by": by.name if by else None, "at": aware(found.closed_at).isoformat(), "comment": found.comment},
    }


def years_json(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    """Every fiscal year the organisation file describes: whether it is the current one, its locks, closes, close."""
    require_plan_reader(user)
    with store.reading() as session:
        return [_state(session, schema, year) for year in schema.config.years]


def close_year(store: Store, schema: PlanSchema, user: User, year: int, comment: str = "") -> dict[str, Any]:
    """Close fiscal year `year` (read-only from now on); 409 naming what is still open, 404 for a year not described."""
    require_finance(user, "closes fiscal years")
    try:
        schema = schema.for_year(year)
    except ConfigError as exc:
        raise NotFound(f"year: {exc}") from None
    with store.transaction() as session:
        years.require_open(session, year, "close it again")
        state = _state(session, schema, year)
        names = [c.name for c in schema.month_columns]
        unlocked = [m for m in names if m not in state["months_locked"]]
        open_accruals = [m for m in names if m not in state["accruals_closed"]]
        if unlocked or open_accruals:
            todo = []
            if unlocked:
                todo.append(f"lock {', '.join(unlocked)} (POST /api/v1/periods/lock?year={year})")
            if open_accruals:
                todo.append(f"close the accruals of {', '.join(open_accruals)} in order")
            raise Conflict(
                f"FY{year} still has open months; " + " and ".join(todo) + ", then close the year",
                months_unlocked=unlocked,
                accruals_open=open_accruals,
            )
        session.add(YearClose(fiscal_year=year, user_id=user.id, comment=comment.strip()[:1000]))
        session.add(AuditEvent(user_id=user.id, action="year.close", target=f"year:{year}",
                               detail={"comment": comment.strip()[:1000]}))  # fmt: skip
        session.flush()
        return _state(session, schema, year)
