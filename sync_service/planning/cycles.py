"""Reforecast cycles: finance opens one ("June reforecast") with its closed months and a deadline.

Opening a cycle locks its closed months (m01 through the month named), so from then on no plan
may change their planned spend (`sync_service.planning.periods`). While it is open, a team's template
(the xlsx download and a Google sheet made for the team) is its reforecast: the closed months
show the actual spend the finance system booked, in locked cells, and the open months carry the
current plan to edit. A submission made while the cycle is open is the team's reforecast; it is
approved like any plan, and the approved plan is the forecast of the open months.

The closed cells are shown, never read: a reforecast keeps the approved plan's amounts in the
closed months whatever the cells hold (a warning names each cell that differs from what the
service shows), so a reforecast cannot change a closed month however its file was edited.

The latest estimate (`Master.estimate`) is the actual spend of the closed months plus the
current plan of the open ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheet_templates.schema import PlanSchema
from sync_service.access.auth import can_see, require_finance, require_plan_reader
from sync_service.master.model import Master
from sync_service.planning import periods
from sync_service.planning.submissions import status_of
from sync_service.platform import outbox, years
from sync_service.platform.errors import Conflict, NotFound, ServiceError
from sync_service.platform.storage import (
    AuditEvent,
    Cycle,
    CycleClose,
    PeriodLock,
    Store,
    Submission,
    Team,
    User,
    aware,
)

MAX_NAME = 120


def open_cycle_row(session: Session, year: int) -> Cycle | None:
    """Fiscal year `year`'s cycle open now (at most one), or None."""
    closed = select(CycleClose.cycle_id)
    query = select(Cycle).where(Cycle.fiscal_year == year, Cycle.id.not_in(closed)).order_by(Cycle.id.desc())
    return session.scalars(query.limit(1)).first()


def closed_months_of(schema: PlanSchema, cycle: Cycle) -> list[str]:
    """The fiscal months a cycle closed: m01 through its `closed_through`."""
    keys = [c.name for c in schema.month_columns]
    return keys[: keys.index(cycle.closed_through) + 1]


def open_cycle(
    store: Store, schema: PlanSchema, user: User, name: str, through: str, deadline: dt.date, comment: str = ""
) -> dict[str, Any]:
    """Open a reforecast cycle (201): lock its closed months, tell the marketers; 409 while another is open."""
    require_finance(user, "opens reforecast cycles")
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ServiceError(f"name: give the cycle a name of 1 to {MAX_NAME} characters, e.g. 'June reforecast'")
    if deadline < dt.date.today():
        raise ServiceError(
            f"deadline: {deadline.isoformat()} has passed; give the day the teams must reforecast by, today or later"
        )
    closed = periods.months_of(schema, {"through": through})
    keys = [c.name for c in schema.month_columns]
    if len(closed) == len(keys):
        raise ServiceError(
            f"through: {through!r} closes every month of the year; a reforecast needs an open month to forecast"
        )
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "open a reforecast cycle")
        session.scalars(select(Team.id).order_by(Team.id).with_for_update()).all()  # one cycle opens at a time
        current = open_cycle_row(session, schema.calendar.year)
        if current is not None:
            raise Conflict(
                f"the cycle {current.name!r} (id {current.id}) is still open; close it before opening another",
                open_cycle=current.id,
            )
        if session.scalar(select(Cycle.id).where(Cycle.name == name)) is not None:
            raise Conflict(f"a cycle is already named {name!r}; give this one its own name")
        row = Cycle(
            name=name,
            fiscal_year=schema.calendar.year,
            closed_through=closed[-1],
            deadline=deadline,
            user_id=user.id,
            comment=comment.strip(),
        )
        session.add(row)
        session.flush()
        locked = periods.locked_months(session, schema.calendar.year)
        newly = [m for m in closed if m not in locked]
        for month in newly:
            session.add(PeriodLock(fiscal_year=schema.calendar.year, month=month, user_id=user.id))
        if newly:
            session.add(AuditEvent(user_id=user.id, action="periods.lock", target="periods", detail={"months": newly}))
        session.add(
            AuditEvent(
                user_id=user.id,
                action="cycle.opened",
                target=f"cycle:{row.id}",
                detail={"name": name, "closed_through": row.closed_through, "deadline": deadline.isoformat()},
            )
        )
        session.flush()
        outbox.stage(session, "cycle.opened", user, cycle=row.id)
        return cycle_json(session, schema, user, row)


def close_cycle(store: Store, schema: PlanSchema, user: User, cycle_id: int) -> dict[str, Any]:
    """Close a cycle (its closed months stay locked); 409 when it is closed already."""
    require_finance(user, "closes reforecast cycles")
    with store.transaction() as session:
        row = session.get(Cycle, cycle_id)
        if row is None:
            raise NotFound(f"there is no cycle {cycle_id}")
        years.require_open(session, row.fiscal_year, "close a reforecast cycle")
        session.scalars(select(Team.id).order_by(Team.id).with_for_update()).all()
        if session.get(CycleClose, cycle_id) is not None:
            raise Conflict(f"the cycle {row.name!r} is closed already")
        session.add(CycleClose(cycle_id=cycle_id, user_id=user.id))
        session.add(AuditEvent(user_id=user.id, action="cycle.closed", target=f"cycle:{cycle_id}", detail={}))
        session.flush()
        return cycle_json(session, schema, user, row)


def cycles_json(store: Store, schema: PlanSchema, user: User) -> list[dict[str, Any]]:
    """Every cycle, newest first, each with its teams' reforecast status (the caller's teams)."""
    require_plan_reader(user)
    with store.reading() as session:
        user = session.merge(user)
        query = select(Cycle).where(Cycle.fiscal_year == schema.calendar.year).order_by(Cycle.id.desc())
        return [cycle_json(session, schema, user, c) for c in session.scalars(query)]


def get_cycle(store: Store, schema: PlanSchema, user: User, cycle_id: int) -> dict[str, Any]:
    require_plan_reader(user)
    with store.reading() as session:
        row = session.get(Cycle, cycle_id)
        if row is None:
            raise NotFound(f"there is no cycle {cycle_id}")
        return cycle_json(session, schema, session.merge(user), row)


def team_status(session: Session, cycle: Cycle) -> dict[str, tuple[str, Submission | None]]:
    """Each team's reforecast in `cycle`: (status, its newest submission); "not submitted" when it has none."""
    newest = (
        select(func.max(Submission.id)).where(Submission.cycle_id == cycle.id).group_by(Submission.team_id)
    ).scalar_subquery()
    latest = {s.team_id: s for s in session.scalars(select(Submission).where(Submission.id.in_(newest)))}
    out: dict[str, tuple[str, Submission | None]] = {}
    for team in session.scalars(select(Team.id).order_by(Team.id)):
        found = latest.get(team)
        out[team] = ("not submitted", None) if found is None else (status_of(session, found), found)
    return out


def waiting_teams(session: Session, cycle: Cycle) -> list[str]:
    """The teams the cycle still waits for: nothing submitted in it, or only a rejected or stale reforecast."""
    waiting = ("not submitted", "rejected", "stale")
    return [t for t, (status, _) in team_status(session, cycle).items() if status in waiting]


def cycle_json(session: Session, schema: PlanSchema, user: User, row: Cycle) -> dict[str, Any]:
    closing = session.get(CycleClose, row.id)
    by = session.get(User, row.user_id)
    teams = []
    for team, (status, found) in team_status(session, row).items():
        if not can_see(user, team):
            continue
        teams.append(
            {
                "team": team,
                "status": status,
                "submission": found.id if found else None,
                "submitted_at": aware(found.created_at).isoformat() if found else None,
            }
        )
    return {
        "id": row.id,
        "name": row.name,
        "status": "closed" if closing else "open",
        "closed_through": row.closed_through,
        "closed_months": closed_months_of(schema, row),
        "deadline": row.deadline.isoformat(),
        "opened_by": by.name if by else None,
        "opened_at": aware(row.created_at).isoformat(),
        "closed_at": aware(closing.closed_at).isoformat() if closing else None,
        "comment": row.comment,
        "teams": teams,
    }


def reforecast_months(session: Session, view: Master) -> tuple[Cycle | None, list[str]]:
    """The open cycle and the months a reforecast shows as booked now (none when no cycle is open).

    The master's closed months (`Master.closed_months`), the same months the latest estimate takes
    as booked: opening the cycle locked its months, and finance may have closed more since.
    """
    cycle = open_cycle_row(session, view.schema.calendar.year)
    return cycle, (view.closed_months if cycle is not None else [])


def shown_closed(view: Master, team: str, months: Sequence[str]) -> dict[str, dict[str, int]]:
    """What a reforecast template of `team` shows in the closed `months`, per line ID, in the line's currency cents.

    The actual spend booked in the month, when the finance export has months; else (no monthly
    actuals) the approved plan's amount, shown locked all the same.
    """
    out: dict[str, dict[str, int]] = {}
    for line in view.team_lines(team):
        booked = view.actual_by_month.get((team, line["line_id"]))
        if view.actual_months is not None:
            out[line["line_id"]] = {m: int((booked or {}).get(m, 0)) for m in months}
        else:
            out[line["line_id"]] = {m: int(line.get(m) or 0) for m in months}
    return out


def closed_issue(
    sheet: str, cell: str | None, line_id: str, label: str, kept: int, held: int, shown: int
) -> dict[str, Any]:
    """The warning for a closed cell that does not hold what the service shows: it was not read."""
    from sheet_templates.money import money_text

    return {
        "severity": "warning",
        "rule": "period.closed",
        "sheet": sheet if cell else None,
        "cell": cell,
        "location": f"{sheet}!{cell}" if cell else None,
        "column": None,
        "line_id": line_id,
        "message": f"{label} is closed: its cell shows the actual spend and is not read. Line {line_id} keeps its "
        f"approved {money_text(kept)} there (the cell holds {money_text(held)}; Plansheet shows {money_text(shown)})",
    }


def carried(
    table: Any,
    closed: Sequence[str],
    approved: Mapping[str, Mapping[str, Any]],
    shown: Mapping[str, Mapping[str, int]],
) -> list[tuple[int, str, int, int, int]]:
    """Set the closed months of a read plan table to the approved plan's amounts (0 for a new line).

    Returns (table row, month, held, shown, kept) for every closed cell that did not hold what the
    service shows there.
    """
    ids = table["line_id"].tolist()
    differed = []
    for m in closed:
        held = table[m].tolist()
        kept = [int(approved.get(line_id, {}).get(m) or 0) for line_id in ids]
        for k, line_id in enumerate(ids):
            expected = int(shown.get(line_id, {}).get(m, 0))
            if int(held[k]) != expected:
                differed.append((k, m, int(held[k]), expected, kept[k]))
        table[m] = kept
    return differed
