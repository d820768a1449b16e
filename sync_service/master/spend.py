"""What the POs and invoices in force give each master line, as the read model holds it (`book`).

POs are matched to master lines when the master is read, by line ID, else campaign code, so a
PO imported before its line was approved is matched once it is. What a line's POs and invoices
give it, in the line's currency, each PO converted on its own at the plan rate:

- committed: the open PO balance (PO amount minus invoiced, never below zero; zero once closed),
  which replaces the committed spend the plan typed as soon as any PO has been imported;
- invoiced: every invoice against the line's POs; an invoice beyond its PO is listed, never
  absorbed;
- accrued: the month-end accrual (`addin.accrual`) of each fiscal month, from the closed
  accrual where finance closed the month (`sync_service.spend.accruals`).

Finance imports the POs and invoices through `sync_service.spend.orders`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from addin.accrual import accrual_cents, delivered_cents
from addin.fx import UnknownCurrency, convert_between, convert_cents
from sheet_templates.money import money_text as money
from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import AccrualClose, Invoice, PurchaseOrder

# The stored fields of a PO and an invoice version, as the read model reads them (with the export's row).
PO_FIELDS = (
    "po_number",
    "vendor",
    "line_id",
    "campaign_code",
    "currency",
    "cents",
    "service_start",
    "service_end",
    "status",
    "method",
    "row",
)
INVOICE_FIELDS = ("invoice_number", "po_number", "currency", "cents", "invoice_date", "row")


def purchase_orders_in_force(session: Session) -> dict[str, dict[str, Any]]:
    """{PO number casefolded: its newest version (stored values, with import id)}.

    Newest by import, whatever the number's case: PO-1 and po-1 are one PO. Plain rows, not ORM
    objects: every master load reads them.
    """
    columns = [getattr(PurchaseOrder, c) for c in PO_FIELDS]
    out: dict[str, dict[str, Any]] = {}
    for row in session.execute(select(*columns, PurchaseOrder.import_id).order_by(PurchaseOrder.import_id)):
        record = dict(zip((*PO_FIELDS, "import_id"), row, strict=True))
        out[record["po_number"].casefold()] = record  # a later import's version replaces an earlier one
    return dict(sorted(out.items()))


def invoices_in_force(session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """{(PO number, invoice number) casefolded: the invoice's newest version}, whatever the numbers' case."""
    columns = [getattr(Invoice, c) for c in INVOICE_FIELDS]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in session.execute(select(*columns, Invoice.import_id).order_by(Invoice.import_id)):
        record = dict(zip((*INVOICE_FIELDS, "import_id"), row, strict=True))
        out[record["po_number"].casefold(), record["invoice_number"].casefold()] = record
    return dict(sorted(out.items()))


def closed_accruals(session: Session) -> dict[str, AccrualClose]:
    """{fiscal month: its closed accrual}."""
    return {c.month: c for c in session.scalars(select(AccrualClose).order_by(AccrualClose.month))}


@dataclass(frozen=True)
class Book:
    """The POs in force, matched to the master's lines, and what they give each line (line currency, cents).

    `orders` are the POs with their figures (PO currency) and match; the arrays are per master
    line, in the master's line order: a line without POs has zeros.
    """

    tracked: bool  # whether any PO was ever imported (then committed is the open PO balance)
    orders: tuple[dict[str, Any], ...]
    unmatched_invoices: tuple[dict[str, Any], ...]  # invoices whose PO number no PO in force has
    po_amount: np.ndarray  # per line: the amount of its POs in force
    committed: np.ndarray  # per line: the open PO balance
    invoiced: np.ndarray  # per line
    accrued: np.ndarray  # per line and fiscal month (lines x 12): the accrual at the month's end
    closed_months: tuple[str, ...] = ()


def book(
    schema: PlanSchema,
    lines: list[dict[str, Any]],
    orders: Mapping[str, dict[str, Any]],
    invoices: Mapping[tuple[str, str], dict[str, Any]],
    closes: Mapping[str, Any],
) -> Book:
    """Match every PO in force to its line and work out each PO's and each line's figures. Pure.

    A closed month's accrual is the one finance closed (`closes[month].entries`), whatever was
    imported since; an open month's is worked out from the POs and invoices in force now.
    """
    config = schema.config
    months = schema.calendar.months
    n = len(lines)
    month_names = [c.name for c in schema.month_columns]
    plan_months = np.array([[int(line.get(m) or 0) for m in month_names] for line in lines], dtype=np.int64)
    plan_months = plan_months.reshape(n, len(month_names))
    plan_cumulative = np.cumsum(plan_months, axis=1)
    by_id: dict[str, list[int]] = defaultdict(list)
    by_code: dict[str, list[int]] = defaultdict(list)
    for k, line in enumerate(lines):
        by_id[str(line["line_id"]).casefold()].append(k)
        if line.get("campaign_code"):
            by_code[str(line["campaign_code"]).casefold()].append(k)
    by_po: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (po, _), invoice in invoices.items():
        by_po[po].append(invoice)
    unmatched_invoices = tuple(
        {"po_number": i["po_number"], "invoice_number": i["invoice_number"], "amount": money(i["cents"])}
        for po, found in sorted(by_po.items())
        if po not in orders
        for i in found
    )
    out: list[dict[str, Any]] = []
    line_of: list[int | None] = []
    accrual_rows: list[list[int]] = []
    # Each closed month's entries by PO number, once: a PO's closed accrual is a look-up, not a scan.
    closed_by: dict[str, dict[str, dict[str, Any]]] = {
        month: {e["po_number"].casefold(): e for e in closed.entries} for month, closed in closes.items()
    }
    for key, po in orders.items():
        k, how, teams = _match(po, by_id, by_code, lines)
        currency = po["currency"]
        mine = by_po.get(key, [])
        amounts = np.array([i["cents"] for i in mine], dtype=np.int64)
        sources = np.array([i["currency"] or currency for i in mine], dtype=object)
        try:
            converted = convert_between(amounts, sources, currency, config) if len(mine) else amounts
        except UnknownCurrency:
            converted = amounts
        # Credit notes reverse what was invoiced, never more: a PO's invoiced total is never below zero,
        # so its open balance is never above its amount, nor its accrual above its amount less invoiced.
        raw_invoiced = int(converted.sum())
        invoiced = max(raw_invoiced, 0)
        dated = [(i["invoice_date"], int(c)) for i, c in zip(mine, converted.tolist(), strict=True)]
        open_balance = 0 if po["status"] != "open" else max(po["cents"] - invoiced, 0)
        accruals = []
        for j, month in enumerate(months):
            closed = closed_by.get(month_names[j])
            if closed is not None:
                entry = closed.get(key)
                accruals.append(int(entry["cents"]) if entry else 0)
                continue
            if po["status"] != "open":
                accruals.append(0)
                continue
            end = month.last_day
            share = (int(plan_cumulative[k, j]), int(plan_cumulative[k, -1])) if k is not None else (0, 0)
            delivered = delivered_cents(po["cents"], po["service_start"], po["service_end"], end, po["method"], share)
            accruals.append(accrual_cents(delivered, max(sum(c for day, c in dated if day <= end), 0)))
        record = {
            **{f: po[f] for f in PO_FIELDS},
            "service_start": po["service_start"].isoformat(),
            "service_end": po["service_end"].isoformat(),
            "match": how,
            "team_id": lines[k]["team_id"] if k is not None else None,
            "matched_line_id": lines[k]["line_id"] if k is not None else None,
            "region": lines[k].get("region") if k is not None else None,
            "channel": lines[k].get("channel") if k is not None else None,
            "line_currency": lines[k].get("currency") if k is not None else None,
            "teams": teams,
            "invoiced_cents": invoiced,
            "open_cents": open_balance,
            "over_po_cents": max(invoiced - po["cents"], 0),
            "credit_beyond_cents": max(-raw_invoiced, 0),  # credited beyond what was invoiced (refused on import)
            "accruals": accruals,  # the accrual at each fiscal month's end (PO currency)
            "invoices": [
                {"invoice_number": i["invoice_number"], "date": i["invoice_date"].isoformat(), "cents": int(c)}
                for i, c in zip(mine, converted.tolist(), strict=True)
            ],
        }
        out.append(record)
        line_of.append(k)
        accrual_rows.append(accruals)
    po_amount, committed, invoiced_line = (np.zeros(n, dtype=np.int64) for _ in range(3))
    accrued = np.zeros((n, 12), dtype=np.int64)
    currencies = [line.get("currency") for line in lines]
    for record, k, accruals in zip(out, line_of, accrual_rows, strict=True):
        if k is None:
            continue
        committed_amount = 0 if record["status"] == "cancelled" else record["cents"]  # a cancelled PO commits nothing
        values = np.array([committed_amount, record["open_cents"], record["invoiced_cents"], *accruals], dtype=np.int64)
        with contextlib.suppress(UnknownCurrency):
            values = convert_between(
                values, np.full(len(values), record["currency"], dtype=object), currencies[k], config
            )
        po_amount[k] += values[0]
        committed[k] += values[1]
        invoiced_line[k] += values[2]
        accrued[k] += values[3:]
    # A closed month's accrual stays on the lines it was closed on, whatever each PO matches now.
    closed_columns = [month_names.index(m) for m in closes]
    accrued[:, closed_columns] = 0
    index_of = {(line["team_id"], line["line_id"]): k for k, line in enumerate(lines)}
    for month, closed in closes.items():
        j = month_names.index(month)
        for entry in closed.entries:
            k = index_of.get((entry.get("team_id"), entry.get("line_id")))
            if k is not None:
                accrued[k, j] += _to_line(int(entry["cents"]), entry["currency"], currencies[k], config)
    return Book(
        tracked=bool(orders),
        orders=tuple(out),
        unmatched_invoices=unmatched_invoices,
        po_amount=po_amount,
        committed=committed,
        invoiced=invoiced_line,
        accrued=accrued,
        closed_months=tuple(sorted(closes)),
    )


def _to_line(cents: int, source: str, target: str, config: Any) -> int:
    try:
        return int(convert_between(np.array([cents]), np.array([source], dtype=object), target, config)[0])
    except UnknownCurrency:
        return cents


def _match(
    po: Mapping[str, Any], by_id: Mapping[str, list[int]], by_code: Mapping[str, list[int]], lines: list[dict[str, Any]]
) -> tuple[int | None, str, list[str]]:
    """(line index, how: line_id, campaign_code, unmatched or ambiguous, the teams an ambiguous key names)."""
    found = by_id.get(po["line_id"].casefold(), []) if po["line_id"] else []
    if len(found) == 1:
        return found[0], "line_id", []
    if po["campaign_code"]:
        coded = by_code.get(po["campaign_code"].casefold(), [])
        if len(coded) == 1:
            return coded[0], "campaign_code", []
        if len(coded) > 1:  # a PO is for one piece of work: never split over the lines sharing a code
            return None, "ambiguous", sorted({lines[k]["team_id"] for k in coded})
    if len(found) > 1:
        return None, "ambiguous", sorted({lines[k]["team_id"] for k in found})
    return None, "unmatched", []


def reporting(book_values: np.ndarray, lines: list[dict[str, Any]], schema: PlanSchema) -> np.ndarray:
    """Per-line amounts in the lines' currencies (lines, or lines x months) as reporting cents, at the plan rate."""
    if not len(lines):
        return book_values
    currencies = np.array([line.get("currency") for line in lines], dtype=object)
    rates = schema.config.plan_rates
    if book_values.ndim == 1:
        return convert_cents(book_values, currencies, rates)
    return np.column_stack([convert_cents(book_values[:, j], currencies, rates) for j in range(book_values.shape[1])])


def over_plan(lines: list[dict[str, Any]], schema: PlanSchema, po_amount: np.ndarray) -> list[dict[str, Any]]:
    """The lines whose POs add up to more than their planned spend for the year (both in the line's currency)."""
    months = [c.name for c in schema.month_columns]
    out = []
    for k, line in enumerate(lines):
        planned = sum(int(line.get(m) or 0) for m in months)
        if po_amount[k] > planned:
            out.append(
                {
                    "team_id": line["team_id"],
                    "line_id": line["line_id"],
                    "currency": line.get("currency"),
                    "planned": money(planned),
                    "purchase_orders": money(int(po_amount[k])),
                    "over_by": money(int(po_amount[k]) - planned),
                }
            )
    return out
