"""Spend control: purchase orders and invoices against plan lines, and what they give each line.

Finance imports the procurement or ERP system's exports of purchase orders (PO number, vendor,
amount, currency, service period, line ID or campaign code) and of the invoices against them
(matched by PO number). Each row is versioned by its number: an import stores only the rows
that are new or changed, and the newest version of each PO and invoice is the one in force, so
importing an export again changes nothing and a partial export (this week's invoices) adds to
what is there. A PO leaves the open commitments when it is closed or cancelled (its status); a
cancelled PO's amount no longer counts against its line's plan either.

POs are matched to master lines when the master is read (`book`), by line ID, else campaign
code, so a PO imported before its line was approved is matched once it is. What a line's POs
and invoices give it, in the line's currency, each PO converted on its own at the plan rate:

- committed: the open PO balance (PO amount minus invoiced, never below zero; zero once closed),
  which replaces the committed spend the plan typed as soon as any PO has been imported;
- invoiced: every invoice against the line's POs; an invoice beyond its PO is listed, never
  absorbed;
- accrued: the month-end accrual (`addin.accrual`) of each fiscal month, from the closed
  accrual where finance closed the month (`sync_service.spend.accruals`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from addin.accrual import METHODS
from addin.text_rule import keep_rule, text_problem
from sheet_templates.cells import column_letter
from sheet_templates.money import money_text as money
from sheet_templates.money import plain_cents
from sheet_templates.schema import PlanSchema
from sync_service.access.auth import require_finance
from sync_service.master.model import current_submissions, master_lines
from sync_service.master.model import load as load_master
from sync_service.master.spend import (
    Book,
    LineIndex,
    book,
    closed_accruals,
    invoices_in_force,
    over_plan,
    purchase_orders_in_force,
)
from sync_service.platform import jobs, presets
from sync_service.platform.errors import Unprocessable
from sync_service.platform.exports import (
    CSV_SHEET,
    FOREIGN_AMOUNT,
    HEAD_ROWS,
    CsvStream,
    NotStreamable,
    calendar_day,
    cell_name,
    collector_paused,
    csv_stream,
    currency_code,
    day_order,
    marked_amount,
    marked_currency,
    norm,
    read_export,
)
from sync_service.platform.idempotency import Idempotency
from sync_service.platform.imports import Stored, finish, insert_rows
from sync_service.platform.presets import INVOICES, PURCHASE_ORDERS, How, Read
from sync_service.platform.storage import Invoice, PurchaseOrder, SpendImport, Store, User

NUMBER_MAX = 64  # characters of a PO or invoice number
TEXT_MAX = 255  # characters of a vendor, line ID or campaign code
DATE_WINDOW_DAYS = 366  # IMPORT_DATE_WINDOW_DAYS' default: dates up to a year either side of the fiscal year
SPEND_LOCK = "spend.import"  # the lock every PO and invoice import holds while it writes

_LINE_ID = ("line id", "line_id", "plan line", "plansheet line id", "plan line id")
_CODE = ("campaign code", "campaign_code", "code", "campaign id", "internal order", "cost object")
_CURRENCY = ("currency", "currency code", "ccy")
_PO_NUMBER = ("po number", "po", "po no", "po no.", "po #", "purchase order", "purchase order number", "order number")

PO_HEADERS = {
    "po_number": _PO_NUMBER,
    "vendor": ("vendor", "supplier", "vendor name", "supplier name"),
    "amount": ("amount", "po amount", "order amount", "net amount", "value", "total", *FOREIGN_AMOUNT),
    "currency": _CURRENCY,
    "service_start": ("service start", "service period start", "service from", "start date", "start"),
    "service_end": ("service end", "service period end", "service to", "end date", "end"),
    "service_period": ("service period",),
    "line_id": _LINE_ID,
    "campaign_code": _CODE,
    "status": ("status", "po status"),
    "method": ("accrual method", "accrual", "accrual basis"),
}
INVOICE_HEADERS = {
    "invoice_number": ("invoice number", "invoice", "invoice no", "invoice no.", "invoice #", "invoice id"),
    "po_number": _PO_NUMBER,
    "amount": ("amount", "invoice amount", "net amount", "value", "total", *FOREIGN_AMOUNT),
    "currency": _CURRENCY,
    "invoice_date": ("invoice date", "date", "document date", "posting date"),
}
_OPEN = {"", "open", "approved", "released", "issued", "active", "partially received", "partially invoiced"}
_CLOSED = {"closed", "complete", "completed", "fully invoiced", "finally closed"}
_CANCELLED = {"cancelled", "canceled", "void", "voided"}
_METHOD_NAMES = {
    "": "straight-line",
    "straight-line": "straight-line",
    "straight line": "straight-line",
    "straight": "straight-line",
    "ratable": "straight-line",
    "plan": "plan",
    "as planned": "plan",
    "phased": "plan",
    "plan phasing": "plan",
    "invoice": "invoice",
    "on invoice": "invoice",
    "none": "invoice",
    "no accrual": "invoice",
}
assert set(_METHOD_NAMES.values()) == set(METHODS)
_STATUS = {**dict.fromkeys(_OPEN, "open"), **dict.fromkeys(_CLOSED, "closed"), **dict.fromkeys(_CANCELLED, "cancelled")}
presets.declare(PURCHASE_ORDERS, PO_HEADERS, {"status": ("open", "closed", "cancelled")})
presets.declare(INVOICES, INVOICE_HEADERS)


# --- reading the exports ------------------------------------------------------------------------------


@dataclass(slots=True)
class PoRow:
    row: int
    po_number: str
    vendor: str
    line_id: str
    campaign_code: str
    currency: str
    cents: int
    service_start: dt.date
    service_end: dt.date
    status: str  # open; closed (complete: no more invoices); cancelled (its amount counts nowhere)
    method: str
    sheet: str = ""  # where the row's amount is, for a refusal
    cell: str = ""

    def stored(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("row", "sheet", "cell")}


@dataclass(slots=True)
class InvoiceRow:
    row: int
    invoice_number: str
    po_number: str
    currency: str
    cents: int  # negative: a credit note
    invoice_date: dt.date
    sheet: str = ""  # where the row's amount is, for a refusal
    cell: str = ""

    def stored(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("row", "sheet", "cell")}


class _Grid:
    """An export's rows under its header, with the columns found, collecting every row's problems.

    `grid` is the whole export when its rows are read one at a time (`records`, `order`), or only
    its first rows (`HEAD_ROWS`) when a `CsvStream` gives the rest by columns.
    """

    def __init__(
        self,
        sheet: str,
        grid: list[list[Any]],
        headers: Mapping[str, tuple[str, ...]],
        what: str,
        kind: str,
        how: How | None = None,
    ) -> None:
        self.sheet = sheet
        if not any(any(norm(v) for v in r) for r in grid[:HEAD_ROWS]):
            raise Unprocessable(f"the {what} export is empty")
        self.reading = (how or How()).read(grid[:HEAD_ROWS], kind, headers, sheet)
        top = self.reading.row
        self.columns = self.reading.columns
        self.header = [str(v) for v in grid[top] if str(v).strip()]
        self.top, self.grid, self.problems = top, grid, []

    @classmethod
    def read(
        cls,
        raw: bytes,
        filename: str | None,
        headers: Mapping[str, tuple[str, ...]],
        what: str,
        kind: str,
        how: How | None = None,
    ) -> _Grid:
        return cls(*read_export(raw, filename), headers, what, kind, how)

    @property
    def cleans(self) -> bool:
        """True when the export's values are rewritten (a preset's words or prefixes) or some rows skipped."""
        preset = self.reading.preset
        return bool(preset.values or preset.prefixes or preset.skip_rows)

    def records(self) -> Any:
        width = max(self.columns.values()) + 1
        for i in range(self.top + 1, len(self.grid)):
            record = self.grid[i]
            if not "".join(map(str, record)).strip() or self.reading.skipped(record):
                continue
            if len(record) < width:
                record = [*record, *[""] * (width - len(record))]
            yield i, record

    def get(self, record: list[Any], name: str) -> Any:
        j = self.columns.get(name)
        return "" if j is None else self.reading.clean(name, record[j])

    def text(self, record: list[Any], name: str) -> str:
        value = self.get(record, name)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    def problem(self, name: str, i: int, rule: str, message: str) -> None:
        j = self.columns.get(name, 0)
        self.problems.append({"sheet": self.sheet, "cell": cell_name(j, i), "rule": rule, "message": message})

    def order(self, *names: str, given: str | None) -> str | None:
        values = [r[self.columns[n]] for n in names if n in self.columns for _, r in self.records()]
        return day_order(values, f"{self.sheet} dates", given, self.reading.preset.date_order)

    def refuse_if_any(self, what: str) -> None:
        if self.problems:
            raise Unprocessable(
                f"{len(self.problems)} row(s) of the {what} export are not valid; nothing was imported",
                issues=self.problems,
            )


def _number(grid: _Grid, record: list[Any], name: str, i: int, rule: str, what: str) -> str | None:
    value = grid.text(record, name)
    if not value:
        grid.problem(name, i, rule, f"no {what}")
        return None
    return _text_kept(grid, name, i, value, what, NUMBER_MAX)


def _text_kept(grid: _Grid, name: str, i: int, value: str, what: str, most: int) -> str | None:
    """`value` when it keeps the one text rule (`addin.text_rule`), else None with its cell's problem."""
    broken = text_problem(value, what[:1].upper() + what[1:], most)
    if broken is None:
        return value
    rule, message = broken
    grid.problem(name, i, str(rule), message)
    return None


def _money(
    grid: _Grid, record: list[Any], i: int, kind: str, schema: PlanSchema, default: str, negative: bool
) -> tuple[int | None, str | None]:
    """(cents, currency) of a row's amount and currency.

    The amount may carry its currency ("EUR 1,200.00", "R$90"), which must agree with the currency
    column; a blank currency is `default` ('' for an invoice: its PO's).
    """
    text = grid.get(record, "amount")
    currencies = schema.config.currencies
    marked = marked_amount(text, tuple(currencies))
    cents = marked.cents
    if cents is None:
        grid.problem("amount", i, f"{kind}.amount", marked.problem or "not an amount")
    elif cents < 0 and not negative:
        grid.problem("amount", i, f"{kind}.amount", "a purchase order's amount cannot be negative")
        cents = None
    given = currency_code(grid.text(record, "currency"), currencies)
    if given and given not in currencies:
        grid.problem("currency", i, f"{kind}.currency", f"{given!r} is not one of {', '.join(sorted(currencies))}")
        return cents, None
    code, why = marked_currency(marked, given, text, schema.config.reporting_currency)
    if why is not None:
        grid.problem("amount", i, f"{kind}.currency", why)
        return cents, None
    return cents, (code or default)


def _day(
    grid: _Grid, record: list[Any], name: str, i: int, rule: str, order: str | None, window: tuple[dt.date, dt.date]
) -> dt.date | None:
    day, why = _day_of(grid.get(record, name), order, window)
    if why is not None:
        grid.problem(name, i, rule, why)
    return day


def _day_of(value: Any, order: str | None, window: tuple[dt.date, dt.date]) -> tuple[dt.date | None, str | None]:
    """(the day a date cell says, within `window`, None) or (None, why it is not one)."""
    if value is None or str(value).strip() == "":
        return None, "no date"
    try:
        day = calendar_day(value, order)
    except ValueError as exc:
        return None, str(exc)
    if day is None:
        return None, f"{str(value).strip()!r} is not a date (use 2026-04-15)"
    return _within(day, window)


def _in_window(
    grid: _Grid, name: str, i: int, rule: str, day: dt.date, window: tuple[dt.date, dt.date]
) -> dt.date | None:
    """`day`, when an organisation can mean it: within the fiscal year and the window around it."""
    kept, why = _within(day, window)
    if why is not None:
        grid.problem(name, i, rule, why)
    return kept


def _within(day: dt.date, window: tuple[dt.date, dt.date]) -> tuple[dt.date | None, str | None]:
    if window[0] <= day <= window[1]:
        return day, None
    return None, (
        f"{day.isoformat()} is outside {window[0].isoformat()} to {window[1].isoformat()} (the fiscal year and "
        "IMPORT_DATE_WINDOW_DAYS around it); check the year"
    )


def window_days(config: Mapping[str, Any]) -> int:
    """IMPORT_DATE_WINDOW_DAYS as configured: the days either side of the fiscal year an import's dates may fall."""
    return int(config.get("IMPORT_DATE_WINDOW_DAYS", DATE_WINDOW_DAYS))


def date_window(schema: PlanSchema, days: int) -> tuple[dt.date, dt.date]:
    """The dates an import may carry: the fiscal year and `days` before and after it."""
    margin = dt.timedelta(days=max(int(days), 0))
    return schema.calendar.start - margin, schema.calendar.end + margin


def _period(
    grid: _Grid, record: list[Any], i: int, order: str | None, window: tuple[dt.date, dt.date]
) -> tuple[dt.date, dt.date] | None:
    """The service period: its start and end columns, or one 'Service period' cell reading '<start> to <end>'."""
    if "service_start" in grid.columns:
        start = _day(grid, record, "service_start", i, "po.service_period", order, window)
        end = _day(grid, record, "service_end", i, "po.service_period", order, window) if start else None
    else:
        span, why = _period_of(grid.text(record, "service_period"), order, window)
        if why is not None:
            grid.problem("service_period", i, "po.service_period", why)
        start, end = span or (None, None)
    if start is None or end is None:
        return None
    if end < start:
        where = "service_end" if "service_end" in grid.columns else "service_period"
        grid.problem(where, i, "po.service_period", f"the service period ends ({end}) before it starts ({start})")
        return None
    return start, end


def _period_of(
    text: str, order: str | None, window: tuple[dt.date, dt.date]
) -> tuple[tuple[dt.date, dt.date] | None, str | None]:
    """A 'Service period' cell ('2026-03-01 to 2026-05-31') as (start, end) within `window`, or (None, why not)."""
    parts = [p.strip() for p in text.replace(" – ", " to ").replace(" - ", " to ").split(" to ")]
    if len(parts) != 2:
        return None, f"{text!r}: write it as 2026-03-01 to 2026-05-31"
    try:
        start, end = calendar_day(parts[0], order), calendar_day(parts[1], order)
    except ValueError as exc:
        return None, str(exc)
    if start is None or end is None:
        return None, f"{text!r}: write it as 2026-03-01 to 2026-05-31"
    start, why = _within(start, window)
    if why is None:
        end, why = _within(end, window)
    return (None, why) if why is not None else ((start, end), None)


def _po_columns_found(grid: _Grid) -> None:
    have = grid.columns.keys()
    period = {"service_start", "service_end"} <= have or "service_period" in have
    if not ({"po_number", "amount"} <= have and period and {"line_id", "campaign_code"} & have):
        raise Unprocessable(
            "the purchase order export needs columns 'PO number', 'Amount', 'Service start' and 'Service end' "
            "(or 'Service period'), and 'Line ID' or 'Campaign code', in its first row; found "
            + (", ".join(grid.header) or "nothing")
        )


def _invoice_columns_found(grid: _Grid) -> None:
    if not {"invoice_number", "po_number", "amount", "invoice_date"} <= grid.columns.keys():
        raise Unprocessable(
            "the invoice export needs columns 'Invoice number', 'PO number', 'Amount' and 'Invoice date' in its "
            "first row; found " + (", ".join(grid.header) or "nothing")
        )


@collector_paused()
def parse_purchase_orders(
    raw: bytes,
    filename: str | None,
    schema: PlanSchema,
    date_order: str | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> Read:
    """The export's purchase orders; 422 naming the cell and rule of every row that is not one, and nothing read.

    A CSV is read as a stream, a chunk of rows at a time: the rows in the usual form (`_po_columns`)
    in bulk, every other row by the rules one row at a time (`_po_row`), so each refusal is the
    same as `purchase_orders_by_row` gives, in the same order. An xlsx workbook, and a CSV the
    stream cannot promise to read as the csv module does, are read by `purchase_orders_by_row`.
    """
    found = _streamed(
        raw,
        schema,
        date_order,
        window_days,
        PO_HEADERS,
        "purchase order",
        PURCHASE_ORDERS,
        _po_columns_found,
        _po_columns,
        how,
    )
    if found is not None:
        return found
    return purchase_orders_by_row(raw, filename, schema, date_order, window_days, how)


def _streamed(
    raw: bytes,
    schema: PlanSchema,
    date_order: str | None,
    window_days: int,
    headers: Mapping[str, tuple[str, ...]],
    what: str,
    kind: str,
    columns_found: Callable[[_Grid], None],
    by_columns: Callable[..., list[Any]],
    how: How | None = None,
) -> Read | None:
    """The rows of a CSV export read as a stream by `by_columns` (422 with every problem); None: read it by row.

    An export whose values a preset rewrites, or whose rows it skips, is read by row.
    """
    stream = csv_stream(raw)
    if stream is None:
        return None
    grid = _Grid(CSV_SHEET, stream.head, headers, what, kind, how)
    columns_found(grid)
    if grid.cleans:
        return None
    try:
        rows = by_columns(stream, grid, schema, date_order, date_window(schema, window_days))
    except NotStreamable:
        return None
    grid.refuse_if_any(what)
    return Read(rows, grid.reading.read_by)


@collector_paused()
def purchase_orders_by_row(
    raw: bytes,
    filename: str | None,
    schema: PlanSchema,
    date_order: str | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> Read:
    """`parse_purchase_orders` reading the whole export and checking it one row at a time: the rules' definition."""
    grid = _Grid.read(raw, filename, PO_HEADERS, "purchase order", PURCHASE_ORDERS, how)
    window = date_window(schema, window_days)
    _po_columns_found(grid)
    order = grid.order("service_start", "service_end", "service_period", given=date_order)
    rows: list[PoRow] = []
    first_row: dict[str, int] = {}
    for i, record in grid.records():
        row = _po_row(grid, record, i, schema, order, window, first_row)
        if row is not None:
            rows.append(row)
    grid.refuse_if_any("purchase order")
    return Read(rows, grid.reading.read_by)


def _po_row(
    grid: _Grid,
    record: list[Any],
    i: int,
    schema: PlanSchema,
    order: str | None,
    window: tuple[dt.date, dt.date],
    first_row: dict[str, int],
) -> PoRow | None:
    """Row `i` of a PO export as a PoRow; None when it, or any row before it, has a problem (added to `grid`).

    `first_row` holds the row of every PO number read so far (casefolded), for the duplicate rule.
    """
    number = _number(grid, record, "po_number", i, "po.number", "PO number")
    cents, currency = _money(grid, record, i, "po", schema, schema.config.reporting_currency, negative=False)
    span = _period(grid, record, i, order, window)
    line_id, code = grid.text(record, "line_id"), grid.text(record, "campaign_code")
    if not line_id and not code:
        grid.problem(
            "line_id" if "line_id" in grid.columns else "campaign_code", i, "po.line", "no line ID or campaign code"
        )
    for name, value, what in (
        ("line_id", line_id, "line ID"),
        ("campaign_code", code, "campaign code"),
        ("vendor", grid.text(record, "vendor"), "vendor"),
    ):
        _text_kept(grid, name, i, value, what, TEXT_MAX)
    status = norm(grid.get(record, "status"))
    if status not in _STATUS:
        grid.problem("status", i, "po.status", f"{status!r}: use Open, or Closed or Cancelled")
    method = _METHOD_NAMES.get(norm(grid.get(record, "method")))
    if method is None:
        grid.problem("method", i, "po.method", "use straight-line, plan or invoice")
    if number is not None and number.casefold() in first_row:
        grid.problem("po_number", i, "po.duplicate", f"PO {number} is also in row {first_row[number.casefold()]}")
        return None
    if number is not None:
        first_row[number.casefold()] = i + 1
    if None in (number, cents, currency, span, method) or grid.problems:
        return None
    return PoRow(
        i + 1,
        number,
        grid.text(record, "vendor"),
        line_id,
        code,
        currency,
        cents,
        span[0],
        span[1],
        _STATUS[status],
        method,
        grid.sheet,
        cell_name(grid.columns["amount"], i),
    )


@collector_paused()
def parse_invoices(
    raw: bytes,
    filename: str | None,
    schema: PlanSchema,
    date_order: str | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> Read:
    """The export's invoices; 422 naming the cell and rule of every row that is not one, and nothing read.

    A row without a currency is in its PO's currency when the PO is known (else the reporting
    currency): `currency` is '' until it is matched. Read as `parse_purchase_orders` reads POs:
    a CSV as a stream (`_invoice_columns`), else `invoices_by_row`.
    """
    found = _streamed(
        raw,
        schema,
        date_order,
        window_days,
        INVOICE_HEADERS,
        "invoice",
        INVOICES,
        _invoice_columns_found,
        _invoice_columns,
        how,
    )
    if found is not None:
        return found
    return invoices_by_row(raw, filename, schema, date_order, window_days, how)


@collector_paused()
def invoices_by_row(
    raw: bytes,
    filename: str | None,
    schema: PlanSchema,
    date_order: str | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> Read:
    """`parse_invoices` reading the whole export and checking it one row at a time: the rules' definition."""
    grid = _Grid.read(raw, filename, INVOICE_HEADERS, "invoice", INVOICES, how)
    window = date_window(schema, window_days)
    _invoice_columns_found(grid)
    order = grid.order("invoice_date", given=date_order)
    rows: list[InvoiceRow] = []
    first_row: dict[tuple[str, str], int] = {}
    for i, record in grid.records():
        row = _invoice_row(grid, record, i, schema, order, window, first_row)
        if row is not None:
            rows.append(row)
    grid.refuse_if_any("invoice")
    return Read(rows, grid.reading.read_by)


def _invoice_row(
    grid: _Grid,
    record: list[Any],
    i: int,
    schema: PlanSchema,
    order: str | None,
    window: tuple[dt.date, dt.date],
    first_row: dict[tuple[str, str], int],
) -> InvoiceRow | None:
    """Row `i` of an invoice export as an InvoiceRow; None when it, or any row before it, has a problem."""
    number = _number(grid, record, "invoice_number", i, "invoice.number", "invoice number")
    po = _number(grid, record, "po_number", i, "invoice.po", "PO number")
    cents, currency = _money(grid, record, i, "invoice", schema, "", negative=True)
    day = _day(grid, record, "invoice_date", i, "invoice.date", order, window)
    if number is not None and po is not None:
        key = (po.casefold(), number.casefold())
        if key in first_row:
            grid.problem(
                "invoice_number",
                i,
                "invoice.duplicate",
                f"invoice {number} of PO {po} is also in row {first_row[key]}",
            )
            return None
        first_row[key] = i + 1
    if None in (number, po, cents, currency, day) or grid.problems:
        return None
    return InvoiceRow(i + 1, number, po, currency, cents, day, grid.sheet, cell_name(grid.columns["amount"], i))


# --- reading a CSV export by columns ------------------------------------------------------------------
#
# Each column of a chunk of rows is checked at once for the usual form of its values: a plain
# amount (`plain_cents`), text that keeps the text rule (`keep_rule`), and for the columns with few
# distinct values (dates, currencies, statuses, methods) each distinct value read once by the very
# function a row is read with. A row whose every field is in that form, and whose number no other
# row shares, cannot break a rule: it is made in bulk. Every other row goes through `_po_row` or
# `_invoice_row`, in order, which add its problems exactly as `*_by_row` does.


class _Chunk:
    """A chunk's rows under the header: its columns by field, and the rows all of whose fields are in the usual form."""

    def __init__(self, grid: _Grid, at: int, columns: dict[int, np.ndarray]) -> None:
        self.grid, self.columns = grid, columns
        self.skip = max(grid.top + 1 - at, 0)  # the title and header rows at the top of the first chunk
        self.first = at + self.skip  # the export's row index of the chunk's first row under the header
        self.n = max(len(next(iter(columns.values()))) - self.skip, 0)
        self.usual = np.ones(self.n, dtype=bool)

    def values(self, name: str) -> np.ndarray:
        """The field's values (all '' when the export has no such column)."""
        j = self.grid.columns.get(name)
        if j is None:
            return np.full(self.n, "", dtype=object)
        return self.columns[j][self.skip :]

    def text(self, name: str, most: int, *, required: bool = False) -> np.ndarray:
        """The field's text as `_Grid.text` gives it; rows where it breaks the text rule (or is blank) are unusual."""
        texts = [v.strip() for v in self.values(name).tolist()]
        self.usual &= keep_rule(texts, most)
        if required:
            self.usual &= np.fromiter(map(bool, texts), dtype=bool, count=self.n)
        return np.array(texts, dtype=object)

    def distinct(self, name: str, read: Callable[[str], Any]) -> tuple[np.ndarray, np.ndarray]:
        """(each row's code, `read` of each distinct value): a column of few values read once per value.

        Rows whose value `read` gives None for are unusual.
        """
        codes, values = pd.factorize(self.values(name))
        found = np.fromiter(map(read, values.tolist()), dtype=object, count=len(values))
        self.usual &= np.fromiter((v is not None for v in found.tolist()), dtype=bool, count=len(found))[codes]
        return codes, found

    def by_value(self, name: str, read: Callable[[str], Any]) -> np.ndarray:
        """`read` of each row's value, reading each distinct value once (see `distinct`)."""
        codes, found = self.distinct(name, read)
        return found[codes]

    def cents(self, *, negative: bool) -> np.ndarray:
        plain, cents = plain_cents(self.values("amount").tolist(), negative=negative)
        self.usual &= plain
        return cents

    def rows(
        self, make: Callable[..., Any] | None, fields: list[np.ndarray], unusual: Callable[[int, list[str]], Any]
    ) -> list[Any]:
        """The chunk's rows in order, the Nones left out.

        `make(the usual rows' numbers in the export, [each field's values in those rows])` makes the
        usual rows (none when `make` is None); `unusual(k, record)` reads every other row k that is
        not blank.
        """
        usual = np.flatnonzero(self.usual)
        made = [] if make is None else make((usual + self.first + 1).tolist(), [f[usual].tolist() for f in fields])
        if len(usual) == self.n:
            return made
        rows: list[Any] = [None] * self.n
        if made:
            for k, row in zip(usual.tolist(), made, strict=True):
                rows[k] = row
        for k in np.flatnonzero(~self.usual).tolist():
            record = [self.columns[j][self.skip + k] for j in sorted(self.columns)]
            if "".join(record).strip():  # as `_Grid.records` skips a blank row
                rows[k] = unusual(k, record)
        return [r for r in rows if r is not None]


def _ordinals(days: np.ndarray) -> np.ndarray:
    """Each day's ordinal, -1 for None."""
    return np.fromiter((-1 if d is None else d.toordinal() for d in days.tolist()), dtype=np.int64, count=len(days))


def _scan(
    stream: CsvStream, grid: _Grid, keys: tuple[str, ...], dates: tuple[str, ...], given: str | None
) -> tuple[str | None, np.ndarray]:
    """One pass over the key and date columns: (the date order `day_order` gives from every date, shared).

    `shared[i]` is True when row i's key (its numbers, casefolded) is some other row's too: those
    rows are all read one at a time, so the duplicate rule sees them as `*_by_row` does.
    """
    found = [n for n in dates if n in grid.columns]
    slashed: dict[str, list[str]] = {n: [] for n in found}
    hashes = []
    for at, columns in stream.chunks(sorted({grid.columns[n] for n in (*keys, *found)})):
        chunk = _Chunk(grid, at, columns)
        for n in found:  # day_order reads only dates written with a slash or a dot
            slashed[n] += [v for v in chunk.values(n).tolist() if "/" in v or "." in v]
        parts = [[v.strip().casefold() for v in chunk.values(n).tolist()] for n in keys]
        hashes.append(np.fromiter(map(hash, map("\x1f".join, zip(*parts, strict=True))), np.int64, count=chunk.n))
    dates = itertools.chain.from_iterable(slashed[n] for n in found)
    order = day_order(dates, f"{grid.sheet} dates", given, grid.reading.preset.date_order)
    every = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(every, return_inverse=True, return_counts=True)
    shared = np.zeros(grid.top + 1 + len(every), dtype=bool)
    shared[grid.top + 1 :] = counts[inverse.ravel()] > 1
    return order, shared


def _po_columns(
    stream: CsvStream, grid: _Grid, schema: PlanSchema, given: str | None, window: tuple[dt.date, dt.date]
) -> list[PoRow]:
    """The POs of a CSV export, a chunk of rows at a time (see above); problems are added to `grid`."""
    c = grid.columns
    if "service_start" in c and "service_end" not in c:
        raise NotStreamable("a service start without a service end")  # every row refused: read by row
    order, shared = _scan(stream, grid, ("po_number",), ("service_start", "service_end", "service_period"), given)
    currencies, default = schema.config.currencies, schema.config.reporting_currency
    letter = column_letter(c["amount"] + 1)
    first_row: dict[str, int] = {}

    def code_of(value: str) -> str | None:  # as `_currency` reads it
        code = value.strip().upper() or default
        return code if code in currencies else None

    def day_of(value: str) -> dt.date | None:
        return _day_of(value, order, window)[0]

    def span_of(value: str) -> tuple[dt.date, dt.date] | None:
        return _period_of(value.strip(), order, window)[0]

    def make(numbers: list[int], fields: list[list[Any]]) -> list[PoRow]:
        cells = [f"{letter}{n}" for n in numbers]
        return list(map(PoRow, numbers, *fields, itertools.repeat(grid.sheet), cells))

    rows: list[PoRow] = []
    for at, columns in stream.chunks():
        chunk = _Chunk(grid, at, columns)
        number = chunk.text("po_number", NUMBER_MAX, required=True)
        cents = chunk.cents(negative=False)
        currency = chunk.by_value("currency", code_of)
        if "service_start" in c:
            starts, start_days = chunk.distinct("service_start", day_of)
            ends, end_days = chunk.distinct("service_end", day_of)
        else:
            starts, spans = chunk.distinct("service_period", span_of)
            ends = starts
            start_days = np.fromiter((s and s[0] for s in spans.tolist()), dtype=object, count=len(spans))
            end_days = np.fromiter((s and s[1] for s in spans.tolist()), dtype=object, count=len(spans))
        chunk.usual &= _ordinals(start_days)[starts] <= _ordinals(end_days)[ends]
        line_id = chunk.text("line_id", TEXT_MAX)
        code = chunk.text("campaign_code", TEXT_MAX)
        chunk.usual &= (line_id != "") | (code != "")
        vendor = chunk.text("vendor", TEXT_MAX)
        status = chunk.by_value("status", lambda v: _STATUS.get(norm(v)))
        method = chunk.by_value("method", lambda v: _METHOD_NAMES.get(norm(v)))
        chunk.usual &= ~shared[chunk.first : chunk.first + chunk.n]
        fields = [number, vendor, line_id, code, currency, cents, start_days[starts], end_days[ends], status, method]
        made = chunk.rows(
            None if grid.problems else make,
            fields,
            lambda k, record: _po_row(grid, record, chunk.first + k, schema, order, window, first_row),  # noqa: B023
        )
        if not grid.problems:
            rows += made
    return rows


def _invoice_columns(
    stream: CsvStream, grid: _Grid, schema: PlanSchema, given: str | None, window: tuple[dt.date, dt.date]
) -> list[InvoiceRow]:
    """The invoices of a CSV export, a chunk of rows at a time (see above); problems are added to `grid`."""
    order, shared = _scan(stream, grid, ("po_number", "invoice_number"), ("invoice_date",), given)
    currencies = schema.config.currencies
    letter = column_letter(grid.columns["amount"] + 1)
    first_row: dict[tuple[str, str], int] = {}

    def code_of(value: str) -> str | None:  # as `_invoice_row` reads it: blank is the PO's currency
        code = value.strip().upper()
        return code if not code or code in currencies else None

    def make(numbers: list[int], fields: list[list[Any]]) -> list[InvoiceRow]:
        cells = [f"{letter}{n}" for n in numbers]
        return list(map(InvoiceRow, numbers, *fields, itertools.repeat(grid.sheet), cells))

    rows: list[InvoiceRow] = []
    for at, columns in stream.chunks():
        chunk = _Chunk(grid, at, columns)
        number = chunk.text("invoice_number", NUMBER_MAX, required=True)
        po = chunk.text("po_number", NUMBER_MAX, required=True)
        cents = chunk.cents(negative=True)
        currency = chunk.by_value("currency", code_of)
        day = chunk.by_value("invoice_date", lambda v: _day_of(v, order, window)[0])
        chunk.usual &= ~shared[chunk.first : chunk.first + chunk.n]
        made = chunk.rows(
            None if grid.problems else make,
            [number, po, currency, cents, day],
            lambda k, record: _invoice_row(grid, record, chunk.first + k, schema, order, window, first_row),  # noqa: B023
        )
        if not grid.problems:
            rows += made
    return rows


# --- what is in force ---------------------------------------------------------------------------------


# --- what the POs and invoices give each line ------------------------------------------------------


# --- importing --------------------------------------------------------------------------------------------


def import_purchase_orders(
    store: Store,
    schema: PlanSchema,
    user: User,
    raw: bytes,
    filename: str | None,
    policy: str = "flag",
    idem: Idempotency | None = None,
    date_order: str | None = None,
    stored: Stored | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> tuple[int, dict[str, Any]]:
    """Store the export's new and changed POs; (201, report) when any was, (200, report) when none.

    The report lists every row that matches no line or several, and every line its POs take
    over its planned spend. Under the `refuse` over-allocation policy an import that takes a
    line over plan is refused (422 naming each PO row on that line) and stores nothing.
    """
    require_finance(user, "imports purchase orders")
    rows = parse_purchase_orders(raw, filename, schema, date_order, window_days, how)
    with store.transaction() as session:
        store.serialise(session, SPEND_LOCK)  # one import at a time: two within plan never take a line over together
        lines = master_lines(session, current_submissions(session, schema.calendar.year), schema, store.shared)
        held = purchase_orders_in_force(session)
        fresh, changed, same = _compare(rows, held)
        after = held.replaced(
            {r.po_number.casefold(): {**r.stored(), "row": r.row, "import_id": 0} for r in fresh + changed}
        )
        invoices = invoices_in_force(session)
        closes = closed_accruals(session, schema.calendar.year)
        index = LineIndex.of(lines)  # the lines as POs find them, once for both books
        before = book(schema, lines, held, invoices, closes, records=False, index=index)  # each line's PO amount
        result = book(schema, lines, after, invoices, closes, index=index)
        grew = {k for k in range(len(lines)) if result.po_amount[k] > before.po_amount[k]}
        grew_keys = {(lines[k]["team_id"], lines[k]["line_id"]) for k in grew}
        over = [  # lines over plan after the import whose POs it raised: newly over, or further over
            o for o in over_plan(lines, schema, result.po_amount) if (o["team_id"], o["line_id"]) in grew_keys
        ]
        by_number = {o["po_number"].casefold(): o for o in result.orders}
        report = {
            "read_by": rows.read_by,
            "rows": len(rows),
            "new": len(fresh),
            "changed": len(changed),
            "unchanged": len(same),
            "matched": sum(
                1 for r in rows if by_number[r.po_number.casefold()]["match"] in ("line_id", "campaign_code")
            ),
            "unmatched": [
                {"row": r.row, "po_number": r.po_number, "line_id": r.line_id, "campaign_code": r.campaign_code}
                for r in rows
                if by_number[r.po_number.casefold()]["match"] == "unmatched"
            ],
            "ambiguous": [
                {"row": r.row, "po_number": r.po_number, "teams": by_number[r.po_number.casefold()]["teams"]}
                for r in rows
                if by_number[r.po_number.casefold()]["match"] == "ambiguous"
            ],
            "over_plan": over,
        }
        if over and policy == "refuse":
            touched = {(o["team_id"], o["line_id"]) for o in over}
            issues = [
                {
                    "sheet": r.sheet,
                    "cell": r.cell,
                    "rule": "po.over_plan",
                    "message": f"PO {r.po_number} takes line {o['matched_line_id']} of {o['team_id']} over its planned "
                    f"spend for the year",
                }
                for r in fresh + changed
                for o in [by_number[r.po_number.casefold()]]
                if (o["team_id"], o["matched_line_id"]) in touched
            ]
            raise Unprocessable(
                f"{len(over)} line(s) would have purchase orders over their planned spend; nothing was imported "
                "(the over-allocation policy is refuse)",
                issues=issues,
                over_plan=over,
            )
        answer = _store(session, user, "purchase_orders", raw, filename, report, fresh + changed, idem, stored)
    return _warmed(store, schema, answer)


def import_invoices(
    store: Store,
    schema: PlanSchema,
    user: User,
    raw: bytes,
    filename: str | None,
    idem: Idempotency | None = None,
    date_order: str | None = None,
    stored: Stored | None = None,
    window_days: int = DATE_WINDOW_DAYS,
    how: How | None = None,
) -> tuple[int, dict[str, Any]]:
    """Store the export's new and changed invoices; (201, report) when any was, (200, report) when none.

    The report lists every invoice whose PO is unknown and every PO its invoices take beyond its amount.
    """
    require_finance(user, "imports invoices")
    rows = parse_invoices(raw, filename, schema, date_order, window_days, how)
    with store.transaction() as session:
        store.serialise(session, SPEND_LOCK)
        orders = purchase_orders_in_force(session)  # an invoice without a currency is in its PO's, when it comes
        held = invoices_in_force(session)
        fresh, changed, same = _compare(rows, held, key=lambda r: (r.po_number.casefold(), r.invoice_number.casefold()))
        after = held.replaced(
            {
                (r.po_number.casefold(), r.invoice_number.casefold()): {**r.stored(), "row": r.row, "import_id": 0}
                for r in fresh + changed
            }
        )
        result = book(schema, [], orders, after, {})
        _refuse_credits_beyond_invoiced(result, fresh + changed)
        over = [
            {
                "po_number": o["po_number"],
                "currency": o["currency"],
                "amount": money(o["cents"]),
                "invoiced": money(o["invoiced_cents"]),
                "over_by": money(o["over_po_cents"]),
            }
            for o in result.orders
            if o["over_po_cents"] > 0
        ]
        report = {
            "read_by": rows.read_by,
            "rows": len(rows),
            "new": len(fresh),
            "changed": len(changed),
            "unchanged": len(same),
            "matched": sum(1 for r in rows if r.po_number.casefold() in orders),
            "unmatched": [
                {"row": r.row, "invoice_number": r.invoice_number, "po_number": r.po_number, "amount": money(r.cents)}
                for r in rows
                if r.po_number.casefold() not in orders
            ],
            "over_po": over,
        }
        answer = _store(session, user, "invoices", raw, filename, report, fresh + changed, idem, stored)
    return _warmed(store, schema, answer)


def _warmed(store: Store, schema: PlanSchema, answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """The import's answer, once the read model of its year is loaded with what it stored.

    Every spend view, accrual and live cell reads the POs through the read model; loading it here,
    as the import commits, means the importer waits for it rather than the next marketer to open
    the spend view (each process keeps it, and every worker when a shared cache is configured).
    """
    if answer[0] == 201:
        load_master(store, schema)
    return answer


def _refuse_credits_beyond_invoiced(result: Book, rows: list[InvoiceRow]) -> None:
    """422 naming each credit note that takes its PO's invoiced total below zero; nothing is stored.

    A credit can only reverse what was invoiced: absorbed, it would raise the PO's open balance and
    accrual above the PO's own amount.
    """
    beyond = {
        o["po_number"].casefold(): f"-{money(o['credit_beyond_cents'])} {o['currency']}"
        for o in result.orders
        if o["credit_beyond_cents"] > 0
    }
    issues = [
        {
            "severity": "error",
            "rule": "invoice.credit_beyond_invoiced",
            "sheet": r.sheet,
            "cell": r.cell,
            "row": r.row,
            "message": (
                f"credit note {r.invoice_number} takes PO {r.po_number}'s invoiced total to "
                f"{beyond[r.po_number.casefold()]}: a credit can only reverse what was invoiced; "
                "import the invoice it credits first, or correct its amount"
            ),
        }
        for r in rows
        if r.cents < 0 and r.po_number.casefold() in beyond
    ]
    if issues:
        raise Unprocessable(
            f"{len(issues)} credit note(s) credit more than their PO was invoiced; nothing was stored", issues=issues
        )


def _compare(rows: list[Any], held: Mapping[Any, Mapping[str, Any]], key: Any = None) -> tuple[list, list, list]:
    """(new, changed, unchanged) rows against the versions in force."""
    key = key or (lambda r: r.po_number.casefold())
    fresh, changed, same = [], [], []
    for r in rows:
        found = held.get(key(r))
        if found is None:
            fresh.append(r)
        elif all(found[k] == v for k, v in r.stored().items()):
            same.append(r)
        else:
            changed.append(r)
    return fresh, changed, same


def _store(
    session: Session,
    user: User,
    kind: str,
    raw: bytes,
    filename: str | None,
    report: dict[str, Any],
    rows: list[Any],
    idem: Idempotency | None,
    stored: Stored | None = None,
) -> tuple[int, dict[str, Any]]:
    """The import, its new rows and its audit event, in the caller's transaction; nothing when nothing is new.

    `stored(session, answer)` runs in the same transaction: a background job records its success
    there, so the import and the job's "succeeded" land together or not at all.
    """
    answer: dict[str, Any] = {"id": None, "kind": kind, "filename": filename, **report}
    if rows:
        record = SpendImport(
            kind=kind,
            user_id=user.id,
            filename=(filename or None) and filename[:255],
            raw=raw,
            raw_sha256=hashlib.sha256(raw).hexdigest(),
            report=report,
        )
        session.add(record)
        session.flush()
        model = PurchaseOrder if kind == "purchase_orders" else Invoice
        insert_rows(session, model, ({"import_id": record.id, "row": r.row, **r.stored()} for r in rows))
        answer.update(id=record.id, imported_at=record.created_at.isoformat())
        detail = {"file": filename, "rows": report["rows"], "stored": len(rows), "unmatched": len(report["unmatched"])}
        return finish(session, user, idem, 201, answer, stored, (f"{kind}.import", f"spend_import:{record.id}", detail))
    return finish(session, user, idem, 200, answer, stored)


@jobs.kind("purchase_orders.import", "Import purchase orders")
def purchase_orders_job(run: Any) -> dict[str, Any]:
    """The job `purchase_orders.import`: the export written with the job, imported as the route does."""
    raw, filename = run.given()
    schema = run.schema
    args = run.job.args or {}
    policy = run.app.config.get("OVER_ALLOCATION", "flag")
    window = window_days(run.app.config)
    return import_purchase_orders(
        run.store,
        schema,
        run.user,
        raw,
        filename,
        policy,
        date_order=args.get("date_order"),
        stored=run.succeed,
        window_days=window,
        how=How.of(args),
    )[1]


@jobs.kind("invoices.import", "Import invoices")
def invoices_job(run: Any) -> dict[str, Any]:
    """The job `invoices.import`: the export written with the job, imported as the route does."""
    raw, filename = run.given()
    schema = run.schema
    args = run.job.args or {}
    window = window_days(run.app.config)
    return import_invoices(
        run.store,
        schema,
        run.user,
        raw,
        filename,
        date_order=args.get("date_order"),
        stored=run.succeed,
        window_days=window,
        how=How.of(args),
    )[1]
