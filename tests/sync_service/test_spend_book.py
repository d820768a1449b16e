"""The read model's spend figures, worked out on whole columns, equal working each PO out on its own.

`book` converts invoices once per currency pair and works out every PO's month-end accruals in one
array operation. The reference here is the plain definition: each PO on its own, each invoice
converted with `convert_between`, each month's delivery and accrual with `addin.accrual`, each
PO's figures converted to its line's currency on their own. Any set of POs, invoices, credits,
methods, statuses, currencies and service periods must give the same figures to the cent.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from addin.accrual import accrual_cents, delivered_cents
from addin.fx import convert_between
from sync_service.master.spend import book
from tests.sync_service.service_helpers import SCHEMA

MONTHS = [c.name for c in SCHEMA.month_columns]
CURRENCIES = ("USD", "EUR", "GBP")
FIRST = SCHEMA.calendar.start
ENDS = [m.last_day for m in SCHEMA.calendar.months]  # an invoice dated a month's last day counts in that month


def _day(draw: st.DrawFn, low: int, high: int) -> dt.date:
    return draw(
        st.one_of(st.sampled_from(ENDS), st.builds(lambda d: FIRST + dt.timedelta(days=d), st.integers(low, high)))
    )


def _convert(cents: int, source: str, target: str) -> int:
    return int(convert_between(np.array([cents]), np.array([source], dtype=object), target, SCHEMA.config)[0])


def reference(lines: list[dict[str, Any]], orders: dict[str, dict[str, Any]], invoices: dict, closes: dict) -> dict:
    """Each PO's (invoiced, open, accruals) and each line's (amount, committed, invoiced, accrued), one PO at a time."""
    ends = [m.last_day for m in SCHEMA.calendar.months]
    per_po, per_line = {}, {}
    for key, po in orders.items():
        mine = [i for (p, _), i in invoices.items() if p == key]
        converted = [
            (i["invoice_date"], _convert(i["cents"], i["currency"] or po["currency"], po["currency"])) for i in mine
        ]
        invoiced = max(sum(c for _, c in converted), 0)
        open_ = max(po["cents"] - invoiced, 0) if po["status"] == "open" else 0
        k = next((n for n, line in enumerate(lines) if line["line_id"].casefold() == po["line_id"].casefold()), None)
        accruals = []
        for j, end in enumerate(ends):
            closed = closes.get(MONTHS[j])
            if closed is not None:
                accruals.append(next((int(e["cents"]) for e in closed.entries if e["po_number"].casefold() == key), 0))
                continue
            if po["status"] != "open":
                accruals.append(0)
                continue
            share = (0, 0)
            if k is not None:
                planned = [int(lines[k].get(m) or 0) for m in MONTHS]
                share = (sum(planned[: j + 1]), sum(planned))
            delivered = delivered_cents(po["cents"], po["service_start"], po["service_end"], end, po["method"], share)
            accruals.append(accrual_cents(delivered, max(sum(c for day, c in converted if day <= end), 0)))
        per_po[key] = (invoiced, open_, accruals)
        if k is not None:
            target = lines[k]["currency"]
            committed = 0 if po["status"] == "cancelled" else po["cents"]
            row = [_convert(v, po["currency"], target) for v in (committed, open_, invoiced, *accruals)]
            old = per_line.get(k, [0] * len(row))
            per_line[k] = [a + b for a, b in zip(old, row, strict=True)]
    return {"po": per_po, "line": per_line}


@st.composite
def spend(draw: st.DrawFn) -> tuple[list, dict, dict, dict]:
    count = draw(st.integers(1, 4))
    lines = []
    for n in range(count):
        months = draw(st.lists(st.integers(0, 10**9), min_size=12, max_size=12))
        lines.append(
            {"team_id": "T", "line_id": f"L-{n}", "currency": draw(st.sampled_from(CURRENCIES)),
             **dict(zip(MONTHS, months, strict=True))}
        )  # fmt: skip
    orders: dict[str, dict[str, Any]] = {}
    invoices: dict[tuple[str, str], dict[str, Any]] = {}
    for p in range(draw(st.integers(0, 6))):
        start = _day(draw, -60, 400)
        end = start + dt.timedelta(days=draw(st.integers(0, 500)))
        number = f"PO-{p}"
        orders[number.casefold()] = {
            "po_number": number, "vendor": "V", "campaign_code": "", "row": p + 2,
            "line_id": draw(st.sampled_from([f"L-{n}" for n in range(count)] + ["GONE"])),
            "currency": draw(st.sampled_from(CURRENCIES)),
            "cents": draw(st.one_of(st.integers(0, 10**12), st.integers(10**15, 10**17))),
            "service_start": start, "service_end": end,
            "status": draw(st.sampled_from(("open", "open", "closed", "cancelled"))),
            "method": draw(st.sampled_from(("straight-line", "plan", "invoice"))),
        }  # fmt: skip
        for i in range(draw(st.integers(0, 4))):
            number_i = f"INV-{p}-{i}"
            invoices[number.casefold(), number_i.casefold()] = {
                "invoice_number": number_i, "po_number": number, "row": i + 2,
                "currency": draw(st.sampled_from(("", *CURRENCIES))),
                "cents": draw(st.integers(-(10**11), 10**11)),
                "invoice_date": _day(draw, -30, 420),
            }  # fmt: skip
    closes = {}
    if orders and draw(st.booleans()):
        month = draw(st.sampled_from(MONTHS))
        entries = [
            {"po_number": po["po_number"], "cents": draw(st.integers(0, 10**8)), "currency": po["currency"],
             "team_id": "T", "line_id": po["line_id"]}
            for po in orders.values()
            if draw(st.booleans())
        ]  # fmt: skip
        closes[month] = SimpleNamespace(entries=entries)
    return lines, dict(sorted(orders.items())), dict(sorted(invoices.items())), closes


@settings(max_examples=150, deadline=None)
@given(spend())
def test_book_on_whole_columns_equals_each_po_worked_out_on_its_own(drawn: tuple[list, dict, dict, dict]) -> None:
    lines, orders, invoices, closes = drawn
    got = book(SCHEMA, lines, orders, invoices, closes)
    want = reference(lines, orders, invoices, closes)
    bare = book(SCHEMA, lines, orders, invoices, closes, records=False)  # the arrays alone, as an import asks
    assert bare.orders == () and all(
        np.array_equal(getattr(bare, f), getattr(got, f)) for f in ("po_amount", "committed", "invoiced", "accrued")
    )
    for record in got.orders:
        invoiced, open_, accruals = want["po"][record["po_number"].casefold()]
        assert (record["invoiced_cents"], record["open_cents"], record["accruals"]) == (invoiced, open_, accruals)
    closed = [MONTHS.index(m) for m in closes]
    for k in range(len(lines)):
        row = want["line"].get(k, [0] * 15)
        assert int(got.po_amount[k]) == row[0]
        assert int(got.committed[k]) == row[1]
        assert int(got.invoiced[k]) == row[2]
        open_months = [j for j in range(12) if j not in closed]  # a closed month's accrual sits where it was closed
        assert [int(got.accrued[k, j]) for j in open_months] == [row[3 + j] for j in open_months]
