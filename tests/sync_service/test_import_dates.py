"""Dates an organisation can mean: a PO's service period and an invoice's date within the fiscal year and the
window around it (IMPORT_DATE_WINDOW_DAYS), ending after they start; refused naming the cell."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, csv_bytes, line, make_service
from tests.sync_service.spend_helpers import INVOICE_HEADER, PO_HEADER, post

START, END = SCHEMA.calendar.start, SCHEMA.calendar.end


def _po(start: str, end: str, number: str = "PO-1") -> list[str]:
    return [number, "Vendor", "1000", "USD", start, end, "EMEA-0001", "", "Open", ""]


def _service(database_url: str, **config) -> Service:
    s = make_service(database_url, **config)
    approved_plan(s, [line("EMEA-0001", m01="1000")])
    return s


@pytest.mark.parametrize(
    ("start", "end", "cell"), [("1900-01-01", "1900-01-31", "E2"), ("2026-03-01", "9999-12-31", "F2")]
)
def test_a_service_period_no_organisation_means_is_refused_by_cell(
    database_url: str, start: str, end: str, cell: str
) -> None:
    s = _service(database_url)
    try:
        body = problem(post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, _po(start, end)])), 422)
        issue = next(i for i in body["issues"] if i["cell"] == cell)
        assert issue["rule"] == "po.service_period" and "check the year" in issue["message"]
        assert (
            s.client.get("/api/v1/purchase-orders", headers=auth(s.tokens["finance"])).get_json()["purchase_orders"]
            == []
        )
    finally:
        s.store.dispose()


def test_an_invoice_dated_9999_is_refused_and_the_window_is_a_setting(database_url: str) -> None:
    s = _service(database_url, IMPORT_DATE_WINDOW_DAYS=0)
    try:
        day_before = (START - dt.timedelta(days=1)).isoformat()
        body = problem(
            post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, _po(day_before, END.isoformat())])), 422
        )
        assert [i["cell"] for i in body["issues"]] == ["E2"]
        assert (
            post(
                s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, _po(START.isoformat(), END.isoformat())])
            ).status_code
            == 201
        )
        late = post(s, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, ["INV-1", "PO-1", "10", "USD", "9999-12-31"]]))
        assert [(i["cell"], i["rule"]) for i in problem(late, 422)["issues"]] == [("E2", "invoice.date")]
    finally:
        s.store.dispose()
