"""Locked fiscal months: once finance closes a month, no newly approved plan may change its planned spend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sheet_templates.calendar import QUARTERS, quarter_of
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance
from sync_service.platform import years
from sync_service.platform.errors import Conflict, ServiceError
from sync_service.platform.storage import AuditEvent, Cycle, CycleClose, PeriodLock, Store, User


def locked_months(session: Session, year: int) -> set[str]:
    """The fiscal months (m01..m12) of fiscal year `year` finance has locked."""
    return set(session.scalars(select(PeriodLock.month).where(PeriodLock.fiscal_year == year)))


def months_of(schema: PlanSchema, body: Any) -> list[str]:
    """Months named by {"months": ["m01", "Q2", "Mar 2026", ...]} or {"through": "m03"}."""
    keys = [m.name for m in schema.month_columns]
    labels = {schema[k].label.lower(): k for k in keys}
    if not isinstance(body, dict):
        raise ServiceError('send {"months": ["m01", "Q1", ...]} or {"through": "m03"}')

    def resolve(name: Any) -> list[str]:
        if not isinstance(name, str):
            raise ServiceError(
                f"{name!r} is not a fiscal month; use m01..m12, Q1..Q4 or a month label such as 'Feb 2026'"
            )
        text = name.strip()
        if text.lower() in keys:
            return [text.lower()]
        if text.upper() in QUARTERS:
            q = QUARTERS.index(text.upper())
            return keys[3 * q : 3 * q + 3]
        if text.lower() in labels:
            return [labels[text.lower()]]
        raise ServiceError(f"{name!r} is not a fiscal month; use m01..m12, Q1..Q4 or a month label such as 'Feb 2026'")

    if "through" in body:
        last = resolve(body["through"])[-1]
        return keys[: keys.index(last) + 1]
    months = body.get("months")
    if not isinstance(months, list) or not months:
        raise ServiceError('send {"months": ["m01", "Q1", ...]} or {"through": "m03"}')
    return sorted({m for name in months for m in resolve(name)}, key=keys.index)


def periods_view(store: Store, schema: PlanSchema) -> dict[str, Any]:
    """Every fiscal month with its quarter and whether (and since when) it is locked."""
    with store.reading() as session:
        locks = {
            p.month: p
            for p in session.scalars(select(PeriodLock).where(PeriodLock.fiscal_year == schema.calendar.year))
        }
        return {
            "periods": [
                {
                    "month": c.name,
                    "label": c.label,
                    "quarter": quarter_of(c.name),
                    "locked": c.name in locks,
                    "locked_at": locks[c.name].locked_at.isoformat() if c.name in locks else None,
                }
                for c in schema.month_columns
            ]
        }


def set_locks(store: Store, schema: PlanSchema, user: User, body: Any, *, lock: bool) -> dict[str, Any]:
    """Lock (or unlock) the months `body` names, audited; answers the periods as they are now."""
    require_finance(user, "locks and unlocks periods")
    months = months_of(schema, body)
    reason = str(body.get("reason") or "").strip()
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "lock or unlock a month")
        existing = locked_months(session, schema.calendar.year)
        changed = [m for m in months if (m not in existing) == lock]
        closed_by = {} if lock else _closed_by_cycles(session, schema, changed)
        if closed_by and not (body.get("reopen") is True and reason):
            named = ", ".join(f"{m} ({closed_by[m]})" for m in sorted(closed_by))
            raise Conflict(
                f"{named} closed with a reforecast cycle that has ended; unlocking reopens what that cycle booked: "
                'send "reopen": true with a "reason" to reopen it (audited), or leave it locked',
                months=sorted(closed_by),
            )
        for month in changed:
            if lock:
                session.add(PeriodLock(fiscal_year=schema.calendar.year, month=month, user_id=user.id))
            else:
                session.delete(session.get(PeriodLock, (schema.calendar.year, month)))
        detail: dict[str, Any] = {"months": changed}
        if closed_by:
            detail.update(reopened=sorted(closed_by), cycles=sorted(set(closed_by.values())), reason=reason)
        session.add(
            AuditEvent(
                user_id=user.id,
                action="periods.lock" if lock else ("periods.reopen" if closed_by else "periods.unlock"),
                target="periods",
                detail=detail,
            )
        )
    return periods_view(store, schema)


def _closed_by_cycles(session: Session, schema: PlanSchema, months: Iterable[str]) -> dict[str, str]:
    """{month: the ended cycle that closed it} for each of `months` a reforecast cycle closed and has ended."""
    keys = [c.name for c in schema.month_columns]
    ended = session.scalars(
        select(Cycle)
        .where(Cycle.fiscal_year == schema.calendar.year, Cycle.id.in_(select(CycleClose.cycle_id)))
        .order_by(Cycle.id)
    )
    closed: dict[str, str] = {}
    for cycle in ended:
        for month in keys[: keys.index(cycle.closed_through) + 1]:
            closed.setdefault(month, cycle.name)
    return {m: closed[m] for m in months if m in closed}


def locked_changes(
    schema: PlanSchema, locked: Iterable[str], before: Mapping[str, Mapping[str, Any]], after: Iterable[dict[str, Any]]
) -> list[tuple[dict[str, Any], str, int, int]]:
    """(line, month, old cents, new cents) for every locked month whose planned spend the new plan changes."""
    months = [m for m in (c.name for c in schema.month_columns) if m in set(locked)]
    if not months:
        return []
    out = []
    seen = set()
    for line in after:
        old = before.get(line["line_id"], {})
        seen.add(line["line_id"])
        for m in months:
            if (line.get(m) or 0) != (old.get(m) or 0):
                out.append((line, m, int(old.get(m) or 0), int(line.get(m) or 0)))
    for line_id, old in before.items():
        if line_id not in seen:
            removed = {"line_id": line_id, "_removed": True}
            out.extend((removed, m, int(old.get(m) or 0), 0) for m in months if old.get(m))
    return out
