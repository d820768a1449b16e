"""Credit notes as finance treats them: they reverse what was invoiced, never more.

A PO's invoiced total never goes below zero, its open balance never above its amount, and its
accrual never above its amount less what was invoiced by the month's end; a credit beyond what
its PO was invoiced is refused naming its cell, and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_service.master.spend import book
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, csv_bytes, make_service
from tests.sync_service.spend_helpers import INVOICE_HEADER, PLAN, cents, imported, invoiced_by, money, post


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, PLAN)
    imported(s)
    yield s
    s.store.dispose()


def _po(s: Service, number: str) -> dict[str, str]:
    orders = s.client.get("/api/v1/purchase-orders", headers=auth(s.tokens["finance"])).get_json()
    return next(p for p in orders["purchase_orders"] if p["po_number"] == number)


def test_a_credit_beyond_what_was_invoiced_is_refused_naming_its_cell(service: Service) -> None:
    before = _po(service, "PO-1001")
    assert money(before["invoiced"]) == invoiced_by("PO-1001") == cents("15000")
    credit = ["CN-1", "PO-1001", "-20000.00", "USD", "2026-03-25"]
    refused = post(
        service,
        "/api/v1/invoices",
        csv_bytes([INVOICE_HEADER, ["INV-9", "PO-1002", "100", "EUR", "2026-04-03"], credit]),
    )
    body = problem(refused, 422)
    issue = next(i for i in body["issues"] if i["rule"] == "invoice.credit_beyond_invoiced")
    assert (issue["cell"], issue["row"]) == ("C3", 3)  # the credit's amount, in the export's third row
    assert "CN-1" in issue["message"] and "PO-1001" in issue["message"] and "-5000.00 USD" in issue["message"]
    assert "import the invoice it credits first" in issue["message"]
    assert _po(service, "PO-1001") == before  # nothing stored, not even the file's good row
    assert "INV-9" not in {i["invoice_number"] for i in _po(service, "PO-1002").get("invoices", [])}


def test_a_credit_within_what_was_invoiced_reverses_it(service: Service) -> None:
    answer = post(
        service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, ["CN-2", "PO-1001", "-5000", "USD", "2026-03-25"]])
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    po = _po(service, "PO-1001")
    assert money(po["invoiced"]) == cents("10000")
    assert money(po["open"]) == cents("20000") <= money(po["amount"])


MONTHS = SCHEMA.calendar.months
LINE = {"team_id": "EMEA-ENTERPRISE", "line_id": "EMEA-0001", "currency": "USD", "region": "EMEA", "channel": "Events"}


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10**9),
    invoices=st.lists(
        st.tuples(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=0, max_value=364)),
        max_size=8,
    ),
    status=st.sampled_from(["open", "closed", "cancelled"]),
    method=st.sampled_from(["straight", "plan", "invoice"]),
)
def test_open_and_accrual_stay_within_the_po_whatever_is_credited(
    amount: int, invoices: list[tuple[int, int]], status: str, method: str
) -> None:
    start = MONTHS[0].first_day
    po = {"po_number": "PO-1", "vendor": "V", "line_id": "EMEA-0001", "campaign_code": "", "currency": "USD",
          "cents": amount, "service_start": start, "service_end": start + dt.timedelta(days=200),
          "status": status, "method": method, "row": 2}  # fmt: skip
    held = {
        ("po-1", f"inv-{k}"): {
            "invoice_number": f"INV-{k}",
            "po_number": "PO-1",
            "currency": "USD",
            "cents": c,
            "invoice_date": start + dt.timedelta(days=d),
            "row": k + 2,
        }
        for k, (c, d) in enumerate(invoices)
    }
    line = {**LINE, **{c.name: 100_00 for c in SCHEMA.month_columns}}
    record = book(SCHEMA, [line], {"po-1": po}, held, {}).orders[0]
    invoiced = record["invoiced_cents"]
    assert invoiced == max(sum(c for c, _ in invoices), 0)
    assert 0 <= record["open_cents"] <= amount
    for j, month in enumerate(MONTHS):
        by_then = max(sum(c for c, d in invoices if start + dt.timedelta(days=d) <= month.last_day), 0)
        assert 0 <= record["accruals"][j] <= max(amount - by_then, 0)
