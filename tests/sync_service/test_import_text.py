"""One text rule for every import: control characters, bidirectional overrides and lengths are refused by cell.

Plans always refused control characters; POs, invoices, actual spend and CRM results stored them
raw (and the GL journal copied them). Now each import refuses such a text naming its sheet and
cell, the rule and what to do, and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from addin.issues import Rule
from addin.text_rule import text_problem
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, approved_plan, csv_bytes, line, make_service, submit
from tests.sync_service.spend_helpers import INVOICE_HEADER, PO_HEADER, post

HOSTILE = {
    "a bell": "Acme\x07 Events",
    "an escape sequence": "Acme \x1b[31mEvents",
    "a right-to-left override": "Acme \u202eevE",
    "a left-to-right isolate": "Acme \u2066Events\u2069",
}
PO = ["PO-1", "Vendor", "1000", "USD", "2026-02-01", "2026-02-28", "EMEA-0001", "", "Open", ""]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, [line("EMEA-0001", m01="1000")])
    yield s
    s.store.dispose()


def _refused(answer, cell: str) -> dict:
    body = problem(answer, 422)
    issue = next(i for i in body["issues"] if i.get("cell") == cell)
    assert "control_character" in issue["rule"], issue
    return issue


@pytest.mark.parametrize("what", HOSTILE)
def test_the_text_rule_names_what_it_found_and_the_fix(what: str) -> None:
    rule, message = text_problem(HOSTILE[what], "Vendor", 255)
    assert rule is Rule.CONTROL_CHARACTER
    assert "Vendor contains" in message and "U+" in message and "retype the text" in message
    assert text_problem("Acme Events GmbH – 東京", "Vendor", 255) is None
    assert text_problem("x" * 256, "Vendor", 255)[0] is Rule.TOO_LONG


@pytest.mark.parametrize("what", HOSTILE)
def test_each_import_refuses_hostile_text_by_cell_and_stores_nothing(service: Service, what: str) -> None:
    bad = HOSTILE[what]
    vendor = post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, [PO[0], bad, *PO[2:]]]))
    assert "Vendor" in _refused(vendor, "B2")["message"]
    number = post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, [f"PO-{bad}", *PO[1:]]]))
    _refused(number, "A2")
    finance = auth(service.tokens["finance"])
    assert service.client.get("/api/v1/purchase-orders", headers=finance).get_json()["purchase_orders"] == []
    assert post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, PO])).status_code == 201
    invoice = post(
        service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, [f"INV-{bad}", "PO-1", "10", "USD", "2026-02-20"]])
    )
    _refused(invoice, "A2")
    actuals = post(service, "/api/v1/actuals", csv_bytes([["Line ID", "Amount"], [f"EMEA-{bad}", "10.00"]]))
    _refused(actuals, "A2")
    results = post(service, "/api/v1/outcomes", csv_bytes([["Campaign", "Month", "Leads"], [bad, "m01", "3"]]))
    _refused(results, "A2")


def test_a_plan_refuses_a_bidirectional_override_too(service: Service) -> None:
    hostile = {**line("EMEA-0001", m01="1000"), "campaign": "Q1 \u202eevE"}
    answer = submit(service.client, service.tokens["emea"], [hostile], "EMEA-ENTERPRISE", {"submission": 1})
    issue = next(i for i in problem(answer, 422)["issues"] if i["rule"] == "cell.control_character")
    assert "U+202E" in issue["message"] and "bidirectional override" in issue["message"]
