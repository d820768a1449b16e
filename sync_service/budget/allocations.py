"""Finance's allocations: the top-down budget by region x fiscal quarter x channel, and the checks against it.

Allocations are in the reporting currency, by region x fiscal quarter x channel ("*" for all
channels). Each `PUT` stores a new immutable revision; the newest is in force; before the
first, the organisation file's region x quarter allocations are (revision 0). What a cell
means is decided here alone (`allocation_of`), and every view reads it from the master
read model (`sync_service.master`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addin.rollup import rollup
from sheet_templates.calendar import QUARTERS
from sheet_templates.formatting import Formats
from sheet_templates.money import display_money, money_text, to_cents
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master.allocations import ALL_CHANNELS, Cells, current_allocations
from sync_service.master.model import current_submissions
from sync_service.platform import years
from sync_service.platform.errors import Conflict, ServiceError, Unprocessable
from sync_service.platform.storage import (
    AllocationCell,
    AllocationRevision,
    AuditEvent,
    Store,
    SubmissionTotal,
    Team,
    User,
)

MAX_ALLOCATION_CELLS = 10_000
ALLOCATIONS_LOCK = "plansheet.allocations"  # held by every writer of a new revision (`Store.serialise`)


def cell_key(
    schema: PlanSchema, item: Mapping[str, Any], where: str, problems: list[dict[str, str]]
) -> tuple[str, ...]:
    """(region, quarter, channel) of an allocation cell as a request names it; each bad part added to `problems`.

    The channel is stored as the list spells it; none (or "*") is all channels.
    """
    channels = {c.casefold(): c for c in schema["channel"].choices}
    region, quarter = item.get("region"), item.get("quarter")
    channel = item.get("channel") or ALL_CHANNELS
    if isinstance(channel, str) and channel.casefold() in channels:
        channel = channels[channel.casefold()]
    if not isinstance(region, str) or region not in schema.config.regions:
        problems.append({"at": f"{where}.region", "message": f"use one of {', '.join(schema.config.regions)}"})
    if not isinstance(quarter, str) or quarter not in QUARTERS:
        problems.append({"at": f"{where}.quarter", "message": "use Q1, Q2, Q3 or Q4"})
    if channel != ALL_CHANNELS and channel not in channels.values():
        listed = ", ".join(sorted(channels.values()))
        problems.append({"at": f"{where}.channel", "message": f"use one of {listed}, or * for all"})
    return (str(region), str(quarter), str(channel))


def put_allocations(store: Store, schema: PlanSchema, user: User, body: Any, *, change: bool = False) -> int:
    """A new allocation revision from `body["allocations"]`; every cell checked first, nothing changed on a refusal.

    PUT (`change=False`) replaces the whole table; a cell it leaves out that has approved plans under
    it is refused (409, naming each) unless the body says `"replace": true`. PATCH (`change=True`)
    changes the cells sent and keeps the rest; a cell sent with `"amount": null` is removed. A body
    naming the `revision` it was made on is refused (409) when another revision was written since.
    """
    require_finance(user, "sets allocations")
    if not isinstance(body, dict) or not isinstance(body.get("allocations"), list):
        raise ServiceError('send {"allocations": [{"region", "quarter", "channel", "amount"}, ...]}')
    items = body["allocations"]
    if len(items) > MAX_ALLOCATION_CELLS:
        raise ServiceError(f"at most {MAX_ALLOCATION_CELLS:,} allocation cells at once")
    problems: list[dict[str, str]] = []
    cells: dict[tuple[str, ...], int | None] = {}
    for n, item in enumerate(items):
        where = f"allocations[{n}]"
        if not isinstance(item, dict):
            problems.append({"at": where, "message": "must be an object with region, quarter, channel and amount"})
            continue
        key = cell_key(schema, item, where, problems)
        region, quarter, channel = key
        removed = change and item.get("amount") is None
        cents = None if removed else to_cents(item.get("amount"))
        if not removed and (cents is None or cents < 0):
            hint = "; or null to remove the cell" if change else ""
            problems.append({"at": f"{where}.amount", "message": f"must be an amount of zero or more{hint}"})
        if key in cells:
            problems.append({"at": where, "message": f"{region} {quarter} {channel} is given twice"})
        cells[key] = cents
    if problems:
        raise Unprocessable(f"{len(problems)} allocation cell(s) are not valid; nothing was changed", issues=problems)
    comment = body.get("comment", "")
    with store.transaction() as session:
        years.require_open(session, schema.calendar.year, "change the allocations")
        store.serialise(session, ALLOCATIONS_LOCK)  # a transfer reads the cells it changes: never over this write
        revision, now = current_allocations(session, schema)
        expected = body.get("revision")
        if expected is not None and expected != revision:
            raise Conflict(
                f"the allocations are at revision {revision}, not {expected}: another change was saved since; "
                "read them again and make the change on the revision in force; nothing was changed",
                revision=revision,
            )
        if change:
            after = dict(now)
            for key, cents in cells.items():
                if cents is None:
                    after.pop(key, None)
                else:
                    after[key] = cents
        else:
            after = {k: v for k, v in cells.items() if v is not None}
            if body.get("replace") is not True:
                _refuse_dropping_planned_cells(session, schema.calendar.year, [k for k in now if k not in after])
        revision = write_revision(
            session, user, schema.calendar.year, after, comment if isinstance(comment, str) else ""
        )
        session.add(
            AuditEvent(
                user_id=user.id,
                action="allocations.change" if change else "allocations.set",
                target=f"allocations:{revision}",
                detail={"cells": len(after), "sent": len(cells), "total": money_text(sum(after.values()))},
            )
        )
        return revision


def _refuse_dropping_planned_cells(session: Session, year: int, dropped: list[tuple[str, ...]]) -> None:
    """409 naming each cell a PUT would drop that has approved plans under it."""
    planned: dict[str, defaultdict[tuple[str, str], int]] = {}
    held = []
    for region, quarter, channel in sorted(dropped):
        if region not in planned:  # one query per region, however many of its cells are dropped
            planned[region] = _region_planned(session, year, region)
        under = planned_under(planned[region], quarter, channel)
        if under > 0:
            what = "all channels" if channel == ALL_CHANNELS else channel
            held.append(
                {
                    "severity": "error",
                    "rule": "allocations.drops_planned_cell",
                    "at": "allocations",
                    "field": f"allocations[{region}, {quarter}, {channel}]",
                    "region": region,
                    "quarter": quarter,
                    "channel": channel,
                    "planned": money_text(under),
                    "message": f"{region} {Formats().quarter(quarter, year)} {what} has {display_money(under)} of "
                    "approved plans under it; "
                    "send the cell too, or PATCH only the cells you mean to change",
                }
            )
    if held:
        raise Conflict(
            f"PUT replaces the whole allocation table and would drop {len(held)} cell(s) with approved plans under "
            'them; send those cells too, PATCH only the cells you mean to change, or send "replace": true to '
            "drop them; nothing was changed",
            issues=held,
        )


def write_revision(session: Session, user: User, year: int, cells: Cells, comment: str) -> int:
    """Store `cells` as fiscal year `year`'s new allocation revision (the one in force from now on); its id.

    The caller holds ALLOCATIONS_LOCK (`Store.serialise`) and writes the audit event.
    """
    revision = AllocationRevision(
        fiscal_year=year,
        user_id=user.id,
        comment=comment[:1000],
        cells=[AllocationCell(region=r, quarter=q, channel=c, cents=v) for (r, q, c), v in sorted(cells.items())],
    )
    session.add(revision)
    session.flush()
    return revision.id


def allocation_findings(
    session: Session, schema: PlanSchema, team: Team, totals: Mapping[tuple[str, str], int]
) -> list[dict[str, Any]]:
    """Allocation cells of `team`'s region that the master would exceed if `team`'s plan were `totals`.

    `totals` is the candidate plan's {(quarter, channel): reporting cents}; the other teams of the
    region count with their approved plans, read from their stored totals, not their lines.
    """
    _, cells = current_allocations(session, schema)
    planned = _region_planned(session, schema.calendar.year, team.region, exclude=team.id)
    for key, cents in totals.items():
        planned[key] += cents
    return over_allocation(schema, {k: v for k, v in cells.items() if k[0] == team.region}, planned)


def region_findings(session: Session, schema: PlanSchema, region: str, cells: Cells) -> list[dict[str, Any]]:
    """Cells of `region` in `cells` (a candidate revision) that the region's approved plans exceed."""
    mine = {k: v for k, v in cells.items() if k[0] == region}
    return over_allocation(schema, mine, _region_planned(session, schema.calendar.year, region)) if mine else []


def _region_planned(
    session: Session, year: int, region: str, exclude: str | None = None
) -> defaultdict[tuple[str, str], int]:
    """{(quarter, channel): reporting cents} of `year`'s approved plans of `region`'s teams (but `exclude`)."""
    planned: defaultdict[tuple[str, str], int] = defaultdict(int)
    region_teams = set(session.scalars(select(Team.id).where(Team.region == region, Team.id != (exclude or ""))))
    held = [sid for tid, sid in current_submissions(session, year).items() if tid in region_teams]
    if held:
        rows = session.execute(
            select(SubmissionTotal.quarter, SubmissionTotal.channel, func.sum(SubmissionTotal.cents))
            .where(SubmissionTotal.submission_id.in_(held))
            .group_by(SubmissionTotal.quarter, SubmissionTotal.channel)
        )
        for quarter, channel, cents in rows:
            planned[(quarter, channel)] += int(cents)
    return planned


def planned_under(planned: Mapping[tuple[str, str], int], quarter: str, channel: str) -> int:
    """The planned spend ({(quarter, channel): cents}, one region's) under one allocation cell ("*": all channels)."""
    return sum(
        cents
        for (q, c), cents in planned.items()
        if q == quarter and (channel == ALL_CHANNELS or c.casefold() == channel.casefold())
    )


def over_allocation(schema: PlanSchema, cells: Cells, planned: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Each of `cells` that `planned` ({(quarter, channel): cents}, one region's) exceeds, as a finding."""
    findings = []
    for (region, quarter, channel), allocated in sorted(cells.items()):
        total = planned_under(planned, quarter, channel)
        if total > allocated:
            findings.append(
                {
                    "region": region,
                    "quarter": quarter,
                    "channel": channel,
                    "allocation": money_text(allocated),
                    "planned": money_text(total),
                    "over": money_text(total - allocated),
                    "message": f"{region} {_quarter(schema, quarter)} "
                    f"{'all channels' if channel == ALL_CHANNELS else channel}: planned {_money(schema, total)} is "
                    f"over the allocation of {_money(schema, allocated)} by {_money(schema, total - allocated)}",
                }
            )
    return findings


def _money(schema: PlanSchema, cents: int) -> str:
    """Reporting-currency cents in a message a person reads ("USD 3,000.00")."""
    return Formats().money(cents, schema.config.reporting_currency, code=True)


def _quarter(schema: PlanSchema, quarter: str) -> str:
    """A quarter key ("Q3") in a message: "Q3 FY2027"."""
    return Formats().quarter(quarter, schema.calendar.year) if quarter in QUARTERS else quarter


def redacted(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding as a marketer may read it: the region's allocation, not what the other teams planned."""
    what = "all channels" if finding["channel"] == ALL_CHANNELS else finding["channel"]
    return {
        "region": finding["region"],
        "quarter": finding["quarter"],
        "channel": finding["channel"],
        "allocation": finding["allocation"],
        "message": f"{finding['region']} {finding['quarter']} {what}: with this plan, the region's plans would be "
        f"over its allocation of {display_money(to_cents(finding['allocation']) or 0)}",
    }


def plan_totals(table: pd.DataFrame, schema: PlanSchema) -> dict[tuple[str, str], int]:
    """A plan's planned spend by (quarter, channel) in reporting-currency cents (the money grain)."""
    if not len(table):
        return {}
    long = rollup(table, schema, by=["channel"], period="quarter")
    return {(row.period, row.channel): int(row.cents) for row in long.itertuples() if row.cents}
