"""The spend-control views of the read model: plan, committed, invoiced, accrued and remaining, and the POs.

Every figure is the read model's (`Master.months`, `committed`, `invoiced`, `accrued`, reporting
cents at the plan rate, line by line); these views only group and format them, so the API, the
dashboard, the master workbook and the Google push show one answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sheet_templates.money import money_text as money
from sync_service.master.model import Master
from sync_service.platform.errors import ServiceError
from sync_service.platform.paging import page_of
from sync_service.spend.accruals import default_month, month_index

BY = ("line", "team", "region")
MEASURES = (
    ("plan", "Planned"),
    ("committed", "Committed (open PO)"),
    ("invoiced", "Invoiced"),
    ("accrued", "Accrued"),
    ("remaining", "Remaining"),
)


def figures(view: Master, month: int) -> dict[str, np.ndarray]:
    """Per line, reporting cents: the year's plan, the open PO balance, invoiced, accrued at `month`'s end, remaining.

    Remaining is the plan neither committed by an open PO nor invoiced.
    """
    plan = view.months.sum(axis=1) if len(view.lines) else np.zeros(0, dtype=np.int64)
    accrued = view.accrued[:, month] if len(view.lines) else np.zeros(0, dtype=np.int64)
    return {
        "plan": plan,
        "committed": view.committed,
        "invoiced": view.invoiced,
        "accrued": accrued,
        "remaining": plan - view.committed - view.invoiced,
    }


def group_keys(view: Master, by: str) -> list[tuple[str, ...]]:
    """Each line's group: (team, line ID), (team,) or (region,)."""
    if not len(view.table):
        return []
    teams = view.table["team_id"].to_numpy(dtype=object).tolist()
    if by == "line":
        return list(zip(teams, view.table["line_id"].to_numpy(dtype=object).tolist(), strict=True))
    if by == "team":
        return [(t,) for t in teams]
    return [(view.regions.get(t, ""),) for t in teams]


def grouped(view: Master, by: str, month: int) -> tuple[list[tuple[str, ...]], dict[tuple[str, ...], dict[str, int]]]:
    """(groups in order, {group: {measure: reporting cents}}): by line in the master's order, else sorted.

    Summed a measure at a time over whole columns (100,000 lines are a few array operations).
    """
    values = figures(view, month)
    keys = group_keys(view, by)
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object)) if keys else (np.zeros(0, dtype=np.int64), [])
    totals = {}
    for name, column in values.items():
        summed = np.zeros(len(uniques), dtype=np.int64)
        np.add.at(summed, codes, np.asarray(column, dtype=np.int64))
        totals[name] = summed.tolist()
    order = list(uniques)
    sums = {key: {name: totals[name][u] for name in values} for u, key in enumerate(order)}
    if by != "line":
        order.sort()
    return order, sums


def spend_json(view: Master, by: str = "team", month: str | None = None) -> dict[str, Any]:
    """The spend-control view by line, team or region at the end of fiscal `month` (default: the month being closed)."""
    if by not in BY:
        raise ServiceError(f"by={by!r}: use line, team or region")
    month = (month or default_month(view)).strip().lower()
    j = month_index(view.schema, month)
    order, sums = grouped(view, by, j)
    described: dict[tuple[str, ...], tuple[Any, Any]] = {}
    if by == "line" and len(view.table):
        described = dict(
            zip(
                group_keys(view, "line"),
                zip(view.table["campaign"].tolist(), view.table["channel"].tolist(), strict=True),
                strict=True,
            )
        )
    rows = []
    for key in order:
        row: dict[str, Any] = {}
        if by == "line":
            campaign, channel = described[key]
            row.update(
                team=key[0],
                line_id=key[1],
                campaign=campaign or None,
                channel=channel or None,
                region=view.regions.get(key[0]),
            )
        else:
            row[by] = key[0]
        row.update({name: money(cents) for name, cents in sums[key].items()})
        rows.append(row)
    totals = {name: sum(s[name] for s in sums.values()) for name, _ in MEASURES}
    whole = view.visible is None
    return {
        "by": by,
        "month": month,
        "month_end": view.schema.calendar.months[j].last_day.isoformat(),
        "currency": view.schema.config.reporting_currency,
        "purchase_orders_tracked": view.po_tracked,
        "rows": rows,
        "totals": {name: money(cents) for name, cents in totals.items()},
        "over_plan": list(view.over_plan),
        "over_po": [_po_brief(p) for p in view.purchase_orders if p["over_po_cents"] > 0],
        "unmatched_purchase_orders": [_po_brief(p) for p in view.purchase_orders if not p["team_id"]] if whole else [],
        "unmatched_invoices": list(view.unmatched_invoices) if whole else [],
        "accrual_closed": list(view.accrual_closed),
        "cents": {"totals": totals, "rows": {"\x1f".join(k): sums[k] for k in order}},
        **view.about,
    }


def _po_brief(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "po_number": p["po_number"],
        "vendor": p["vendor"],
        "team": p["team_id"],
        "line_id": p["matched_line_id"] or p["line_id"] or None,
        "campaign_code": p["campaign_code"] or None,
        "match": p["match"],
        "currency": p["currency"],
        "amount": money(p["cents"]),
        "invoiced": money(p["invoiced_cents"]),
        "over_by": money(p["over_po_cents"]),
    }


def purchase_orders_json(
    view: Master, status: str | None = None, limit: int = 500, after: str | None = None
) -> dict[str, Any]:
    """A page of the POs in force the caller may see (a marketer: their teams' only), with figures and invoices.

    In PO-number order, at most `limit` after the PO `after` names; `next` is the next page's cursor.
    Only the page's POs are written out, however many there are.
    """
    items: list[dict[str, Any]] = list(view.purchase_orders)
    if status is not None:
        items = [p for p in items if p["status"] == status]
    items, following = page_of(items, lambda p: p["po_number"], limit, after)
    out = []
    for p in items:
        out.append(
            {
                "po_number": p["po_number"],
                "vendor": p["vendor"],
                "status": p["status"],
                "method": p["method"],
                "currency": p["currency"],
                "amount": money(p["cents"]),
                "invoiced": money(p["invoiced_cents"]),
                "open": money(p["open_cents"]),
                "over_po": money(p["over_po_cents"]),
                "service_start": p["service_start"],
                "service_end": p["service_end"],
                "match": p["match"],
                "team": p["team_id"],
                "line_id": p["matched_line_id"],
                "given_line_id": p["line_id"] or None,
                "campaign_code": p["campaign_code"] or None,
                "teams": p["teams"],
                "accrued": {m.name: money(c) for m, c in zip(view.schema.calendar.months, p["accruals"], strict=True)},
                "invoices": [
                    {"invoice_number": number, "date": day.isoformat(), "amount": money(cents)}
                    for number, day, cents in p["invoices"]
                ],
            }
        )
    return {"purchase_orders": out, "next": following, **view.about}


def spend_table(view: Master, month: str | None = None) -> tuple[list[str], list[str], list[list[Any]]] | None:
    """(header, kinds, rows): each region, then each team, at fiscal `month`'s end (default: the month being closed).

    Money in reporting cents, the read model's figures as `spend_json` groups them; None before any PO was
    imported. The master workbook's Spend sheet and the Google push's show the same table.
    """
    if not view.po_tracked:
        return None
    j = month_index(view.schema, month or default_month(view))
    rows: list[list[Any]] = []
    for by, label in (("region", "Region"), ("team", "Team")):
        order, sums = grouped(view, by, j)
        rows += [[label, key[0], *(sums[key][name] for name, _ in MEASURES)] for key in order]
    end = view.schema.calendar.months[j].label
    labels = [f"Accrued (end of {end})" if name == "accrued" else text for name, text in MEASURES]
    return ["By", "Name", *labels], ["text", "text", *("money" for _ in MEASURES)], rows


def sheets(view: Master) -> list[Any]:
    """The master workbook's Spend sheet (by region, then by team) at the month being closed, once POs are imported."""
    from sheet_templates.master_workbook import Table, ValuesSheet

    month = default_month(view)
    found = spend_table(view, month)
    if found is None:
        return []
    header, kinds, rows = found
    fiscal = view.schema.calendar.months[month_index(view.schema, month)]
    note = (
        f"Spend control at the end of {fiscal.label} ({month}, the month being closed), in "
        f"{view.schema.config.reporting_currency} at the plan rates: the year's plan, the open PO balance, "
        "invoiced, accrued at that month's end and remaining (plan less committed and invoiced)"
    )
    tables = [
        Table(title, [by, *header[2:]], kinds[1:], [row[1:] for row in rows if row[0] == by])
        for title, by in (("By region", "Region"), ("By team", "Team"))
    ]
    return [ValuesSheet("Spend", note, tables)]
