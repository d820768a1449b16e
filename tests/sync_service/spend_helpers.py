"""Spend control's test data and its independent computation: a plan, its POs and invoices, each line's figures.

Every expected figure is worked out here from the rows the tests send (straight-line over the
service period's days, plan rates from the organisation file, rounded half away from zero),
never read back from the service's own answer.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from tests.sync_service.http_helpers import auth
from tests.sync_service.service_helpers import SCHEMA, Service, csv_bytes, line

RATES = SCHEMA.config.plan_rates
MONTHS = SCHEMA.calendar.months
NAMES = [m.name for m in MONTHS]
TEAM = "EMEA-ENTERPRISE"
PLAN = [
    line("EMEA-0001", **{m: "10000" for m in NAMES[:6]}),
    line("EMEA-0002", channel="Webinars", currency="EUR", m02="5000", m03="5000"),
    line("EMEA-0003", channel="Content", code="CC-DUP", m04="3000"),
    line("EMEA-0004", channel="Content", code="CC-DUP", m05="3000"),
]
PO_HEADER = ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Campaign code",
             "Status", "Accrual method"]  # fmt: skip
POS = [
    ["PO-1001", "Hall & Stand Ltd", "30000", "USD", "2026-02-01", "2026-04-30", "EMEA-0001", "", "Open", ""],
    ["PO-1002", "Webinar Co", "8000", "EUR", "2026-03-01", "2026-03-31", "", "CC-EMEA-0002", "Open", "plan"],
    ["PO-1003", "Nobody's line", "500", "USD", "2026-02-01", "2026-02-28", "NOPE-1", "", "Open", ""],
    ["PO-1004", "Shared code", "1000", "USD", "2026-02-01", "2026-02-28", "", "CC-DUP", "Open", ""],
    ["PO-1005", "Cancelled Inc", "2000", "USD", "2026-02-01", "2026-03-31", "EMEA-0001", "", "Cancelled", ""],
    ["PO-1006", "@Pounds plc", "1000", "GBP", "2026-02-15", "2026-05-14", "EMEA-0002", "", "Open", ""],
]
INVOICE_HEADER = ["Invoice number", "PO number", "Amount", "Currency", "Invoice date"]
INVOICES = [
    ["INV-1", "PO-1001", "10000", "USD", "2026-02-27"],
    ["INV-2", "PO-1001", "5000", "", "2026-03-20"],
    ["INV-3", "PO-1002", "9000", "EUR", "2026-04-02"],
    ["INV-4", "PO-9999", "100", "USD", "2026-03-01"],
]


# --- the independent computation --------------------------------------------------------------------


def half_up(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    return sign * int((abs(Decimal(value.numerator) / Decimal(value.denominator))).quantize(Decimal(1), ROUND_HALF_UP))


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def convert(amount: int, source: str, target: str) -> int:
    if source == target:
        return amount
    return half_up(amount * Fraction(RATES[source]) / Fraction(RATES[target]))


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def plan_of(line_id: str) -> dict[str, Any]:
    return next(x for x in PLAN if x["line_id"] == line_id)


def line_for(po: list[str]) -> str | None:
    """The plan line a PO row names: its line ID, else a campaign code only one line has."""
    if any(x["line_id"] == po[6] for x in PLAN):
        return po[6]
    coded = [x["line_id"] for x in PLAN if x["campaign_code"] == po[7]]
    return coded[0] if len(coded) == 1 else None


def invoiced_by(po: str, through: dt.date | None = None) -> int:
    currency = next(p[3] for p in POS if p[0] == po)
    return sum(
        convert(cents(i[2]), i[3] or currency, currency)
        for i in INVOICES
        if i[1] == po and (through is None or day(i[4]) <= through)
    )


def accrual(po: list[str], month: int) -> int:
    """What the PO accrues at fiscal month `month`'s end (0-based), in its currency."""
    if po[8] == "Cancelled":
        return 0
    end, start, stop, amount = MONTHS[month].last_day, day(po[4]), day(po[5]), cents(po[2])
    if end < start:
        return 0
    if po[9] == "plan":
        planned = [Decimal(plan_of(line_for(po)).get(m, 0)) for m in NAMES]
        delivered = half_up(amount * Fraction(sum(planned[: month + 1])) / Fraction(sum(planned)))
    elif end >= stop:
        delivered = amount
    else:
        delivered = half_up(amount * Fraction((end - start).days + 1, (stop - start).days + 1))
    return max(delivered - invoiced_by(po[0], end), 0)


def line_figures(line_id: str, month: int) -> dict[str, int]:
    """A line's plan, committed, invoiced, accrued and remaining in reporting cents: each PO to the line's
    currency on its own, the line's sum to the reporting currency."""
    x = plan_of(line_id)
    currency = x["currency"]
    open_, invoiced, accrued = 0, 0, 0
    for po in POS:
        if line_for(po) != line_id:
            continue
        billed = invoiced_by(po[0])
        open_ += convert(0 if po[8] == "Cancelled" else max(cents(po[2]) - billed, 0), po[3], currency)
        invoiced += convert(billed, po[3], currency)
        accrued += convert(accrual(po, month), po[3], currency)
    plan = sum(convert(cents(str(x.get(m, 0))), currency, "USD") for m in NAMES)
    out = {
        "plan": plan,
        "committed": convert(open_, currency, "USD"),
        "invoiced": convert(invoiced, currency, "USD"),
        "accrued": convert(accrued, currency, "USD"),
    }
    out["remaining"] = out["plan"] - out["committed"] - out["invoiced"]
    return out


def money(value: str) -> int:
    return cents(value.replace(",", ""))


# --- sending the rows ---------------------------------------------------------------------------------


def post(s: Service, path: str, data: bytes, token: str = "finance", name: str = "export.csv") -> Any:
    return s.client.post(
        f"{path}?filename={name}", headers=auth(s.tokens[token]), data=data, content_type="application/octet-stream"
    )


def imported(s: Service) -> None:
    answer = post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *POS]))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    answer = post(s, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, *INVOICES]))
    assert answer.status_code == 201, answer.get_data(as_text=True)
