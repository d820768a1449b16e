"""The month-end accrual: its report, its journal for the general ledger, and closing it.

Every PO whose service period has started by a fiscal month's end accrues what was delivered
but not invoiced by then (`addin.accrual`), worked out with every PO, invoice and line in the
read model (`Master.purchase_orders`), so the report, the journal, the spend view and the live
functions show one figure. The journal books each PO's accrual on the month's last day (debit
the expense account of the line's channel and its region's cost centre, credit the accrued
liability account, all from the organisation file's `[accounting]`), and reverses it on the
next month's first day, when the invoices come in.

Finance closes months in order. A closed month's entries are stored as they were and never
worked out again: a PO or invoice imported later changes the next month, never a closed one. What
follows a close (the month's management pack, `sync_service.documents.packs`) is written in the
close's own transaction by the follow-up the caller passes, and queued once it has committed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import Any, Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from addin.fx import UnknownCurrency, convert_cents
from sheet_templates.money import money_text as money
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master import model as master_model
from sync_service.master.model import Master
from sync_service.platform import years
from sync_service.platform.errors import Conflict, NotFound
from sync_service.platform.storage import AccrualClose, AuditEvent, Store, User
from sync_service.platform.storage import User as UserRow

UNMATCHED = "(no plan line)"  # the team and region of a PO no plan line matches


def month_index(schema: PlanSchema, month: str) -> int:
    """0-based index of a fiscal month m01..m12; 404 for anything else."""
    names = [c.name for c in schema.month_columns]
    key = month.strip().lower()
    if key not in names:
        raise NotFound(f"{month!r} is not a fiscal month; use m01..m12")
    return names.index(key)


def default_month(view: Master) -> str:
    """The month being closed: the first whose accrual is not closed yet (the last when every one is)."""
    names = [c.name for c in view.schema.month_columns]
    return next((m for m in names if m not in view.accrual_closed), names[-1])


def entries(view: Master, month: str, closed: AccrualClose | None = None) -> list[dict[str, Any]]:
    """The month's accrual per PO (PO currency), with where it is booked: the stored ones of a closed month."""
    if closed is not None:
        teams = view.visible
        return [dict(e) for e in closed.entries if teams is None or e.get("team_id") in teams]
    j = month_index(view.schema, month)
    accounting = view.schema.config.accounting
    out = []
    for po in view.purchase_orders:
        cents = po["accruals"][j]
        if cents <= 0:
            continue
        region, channel = po["region"] or "", po["channel"] or ""
        out.append(
            {
                "po_number": po["po_number"],
                "vendor": po["vendor"],
                "team_id": po["team_id"],
                "line_id": po["matched_line_id"],
                "region": po["region"],
                "channel": po["channel"],
                "method": po["method"],
                "service_start": po["service_start"],
                "service_end": po["service_end"],
                "currency": po["currency"],
                "po_cents": po["cents"],
                "cents": cents,
                "expense_account": accounting.expense_for(channel),
                "cost_centre": accounting.cost_centre_for(region),
            }
        )
    return out


def report(store: Store, view: Master, month: str | None) -> dict[str, Any]:
    """The accrual of `month` (default: the month being closed): each PO's, and totals by team and region.

    The team and region totals are the read model's (`Master.accrued`, reporting cents at the plan
    rate, line by line), so they are the figures every other surface shows.
    """
    schema = view.schema
    month = (month or default_month(view)).strip().lower()
    j = month_index(schema, month)
    closed = _closed(store, schema.calendar.year, month)
    rows = entries(view, month, closed)
    fiscal = schema.calendar.months[j]
    teams: dict[str, int] = defaultdict(int)
    regions: dict[str, int] = defaultdict(int)
    accrued = view.accrued[:, j] if len(view.accrued) else np.zeros(0, dtype=np.int64)
    team_of = view.table["team_id"].to_numpy(dtype=object) if len(view.table) else np.zeros(0, dtype=object)
    for k in np.flatnonzero(accrued).tolist():  # only the lines with an accrual: a few, of 100,000
        cents, team = int(accrued[k]), team_of[k]
        teams[team] += cents
        regions[view.regions.get(team, "")] += cents
    unmatched = [e for e in rows if not e.get("team_id")]
    unmatched_cents = _in_reporting(unmatched, schema)
    total = sum(teams.values()) + unmatched_cents
    answer: dict[str, Any] = {
        "month": month,
        "label": fiscal.label,
        "month_end": fiscal.last_day.isoformat(),
        "closed": closed is not None,
        "closed_at": closed.closed_at.isoformat() if closed is not None else None,
        "currency": schema.config.reporting_currency,
        "entries": [
            {
                **{k: v for k, v in e.items() if k not in ("cents", "po_cents")},
                "po_amount": money(e["po_cents"]),
                "accrued": money(e["cents"]),
            }
            for e in rows
        ],
        "by_team": [{"team": t, "accrued": money(c)} for t, c in sorted(teams.items())],
        "by_region": [{"region": r, "accrued": money(c)} for r, c in sorted(regions.items())],
        "not_on_a_line": money(unmatched_cents),
        "total": money(total),
        "cents": {"total": total, "by_team": dict(teams), "by_region": dict(regions), "not_on_a_line": unmatched_cents},
        **view.about,
    }
    return answer


def _in_reporting(rows: list[dict[str, Any]], schema: PlanSchema) -> int:
    if not rows:
        return 0
    try:
        return int(
            convert_cents(
                np.array([e["cents"] for e in rows], dtype=np.int64),
                np.array([e["currency"] for e in rows], dtype=object),
                schema.config.plan_rates,
            ).sum()
        )
    except UnknownCurrency:
        return int(sum(e["cents"] for e in rows))


def _closed(store: Store, year: int, month: str) -> AccrualClose | None:
    with store.reading() as session:
        found = session.get(AccrualClose, (year, month))
        if found is not None:
            session.expunge(found)
        return found


JOURNAL_COLUMNS = (
    "Journal",
    "Date",
    "Period",
    "Account",
    "Cost centre",
    "Debit",
    "Credit",
    "Currency",
    "Description",
    "Reference",
    "Team",
    "Line ID",
)


def journal_csv(store: Store, view: Master, month: str, which: str = "both") -> str:
    """The month's accrual as journal lines for the GL (CSV), and its reversal on the next month's first day.

    Each PO's accrual is two lines that balance in its currency: the expense debited, the accrued
    liability credited; the reversal swaps them. 409 naming what is missing when the organisation
    file does not say which accounts to use.
    """
    schema = view.schema
    accounting = schema.config.accounting
    month = month.strip().lower()
    j = month_index(schema, month)
    rows = entries(view, month, _closed(store, schema.calendar.year, month))
    missing = []
    if not accounting.accrual_account:
        missing.append("accounting.accrual_account")
    if any(not e["expense_account"] for e in rows):
        missing.append("accounting.expense_account (or accounting.expense_accounts for each channel)")
    if any(not e["cost_centre"] for e in rows):
        missing.append("accounting.cost_centre (or accounting.cost_centres for each region)")
    if missing:
        raise Conflict(
            "the organisation file does not say where the accrual is booked; set " + ", ".join(missing),
            missing=missing,
        )
    fiscal = schema.calendar.months[j]
    after = fiscal.last_day + dt.timedelta(days=1)
    # The last month's reversal lands in the first month of the next fiscal year, named with that year.
    following = schema.calendar.months[j + 1].label if j + 1 < 12 else f"{after:%b %Y} (FY{schema.calendar.year + 1})"
    name = f"ACCR-{schema.calendar.label}-{month.upper()}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(JOURNAL_COLUMNS)
    for reverse in (False, True):
        if (which == "accrual" and reverse) or (which == "reversal" and not reverse):
            continue
        journal, day, period = (f"{name}-REV", after, following) if reverse else (name, fiscal.last_day, fiscal.label)
        for e in rows:
            amount = money(e["cents"])
            text = f"{'Reversal of accrual' if reverse else 'Accrual'}: {e['vendor'] or 'vendor'}, PO {e['po_number']}"
            sides = [(e["expense_account"], e["cost_centre"]), (accounting.accrual_account, "")]
            if reverse:
                sides.reverse()
            for (account, centre), (debit, credit) in zip(sides, ((amount, ""), ("", amount)), strict=True):
                writer.writerow(
                    [
                        journal,
                        day.isoformat(),
                        period,
                        account,
                        centre,
                        debit,
                        credit,
                        e["currency"],
                        _cell(text),
                        _cell(e["po_number"]),
                        _cell(e.get("team_id") or ""),
                        _cell(e.get("line_id") or ""),
                    ]
                )
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet opening the CSV would read as a formula is written as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AfterClose(Protocol):
    """What follows a close: `stage` writes it in the close's transaction, `after` queues it once committed."""

    def stage(self, session: Session, user: User, year: int, month: str) -> Any: ...

    def after(self, staged: Any) -> dict[str, Any] | None: ...


def close(
    store: Store, schema: PlanSchema, user: User, month: str, follow_up: AfterClose | None = None
) -> dict[str, Any]:
    """Close a month's accrual: its entries stored as they are now, never worked out again. In order.

    409 when it is closed already, or when the month before it is not closed yet. The answer's `pack`
    says what the follow-up queued (the month's management pack), None without one.
    """
    require_finance(user, "closes the month-end accrual")
    month = month.strip().lower()
    j = month_index(schema, month)
    names = [c.name for c in schema.month_columns]
    view = master_model.load(store, schema)
    rows = entries(view, month)
    try:
        with store.transaction() as session:
            year = schema.calendar.year
            years.require_open(session, year, "close a month's accrual")
            closed = set(session.scalars(select(AccrualClose.month).where(AccrualClose.fiscal_year == year)))
            if month in closed:
                raise Conflict(f"the accrual of {month} is closed already; a closed month's accrual never changes")
            if j and names[j - 1] not in closed:
                first = next(m for m in names if m not in closed)
                raise Conflict(f"close the accrual of {first} first: months are closed in order")
            if _changed(master_model.current_key(store, year), view):
                raise Conflict(
                    "purchase orders, invoices or plans changed while the accrual was worked out; close again"
                )
            session.add(AccrualClose(fiscal_year=schema.calendar.year, month=month, user_id=user.id, entries=rows))
            session.add(
                AuditEvent(
                    user_id=user.id,
                    action="accrual.close",
                    target=f"accrual:{month}",
                    detail={"entries": len(rows), "by_currency": _by_currency(rows)},
                )
            )
            staged = follow_up.stage(session, user, year, month) if follow_up is not None else None
    except IntegrityError:
        raise Conflict(f"the accrual of {month} was closed at the same moment by another request") from None
    answer = report(store, master_model.load(store, schema, user), month)
    answer["pack"] = follow_up.after(staged) if follow_up is not None else None
    return answer


def _changed(key: dict[str, int], view: Master) -> bool:
    """Whether the plans, POs or invoices an accrual was worked out from changed since `view` was loaded."""
    return (key["master_version"], key["spend_import"]) != (view.version, view.spend_import or 0)


def _by_currency(rows: list[dict[str, Any]]) -> dict[str, str]:
    totals: dict[str, int] = defaultdict(int)
    for e in rows:
        totals[e["currency"]] += e["cents"]
    return {c: money(v) for c, v in sorted(totals.items())}


def closes_json(store: Store, year: int) -> list[dict[str, Any]]:
    """Every closed month of fiscal year `year`: when, by whom, how many entries."""
    with store.reading() as session:
        out = []
        query = select(AccrualClose).where(AccrualClose.fiscal_year == year).order_by(AccrualClose.month)
        for c in session.scalars(query):
            by = session.get(UserRow, c.user_id)
            out.append(
                {
                    "month": c.month,
                    "closed_at": c.closed_at.isoformat(),
                    "closed_by": by.name if by else None,
                    "entries": len(c.entries),
                }
            )
        return out
