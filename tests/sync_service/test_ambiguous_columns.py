"""Each field is read from one column: two columns answering one field are refused naming both, never guessed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, approved_plan, csv_bytes, line, make_service
from tests.sync_service.spend_helpers import cents, money, post

HEADER = ["PO number", "Vendor", "Currency", "Service start", "Service end", "Line ID", "Status"]
ROW = ["PO-1", "Acme", "EUR", "2026-02-01", "2026-02-28", "EMEA-0001", "Open"]


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, [line("EMEA-0001", currency="EUR", m01="5000")])
    yield s
    s.store.dispose()


def _orders(s: Service) -> list[dict]:
    return s.client.get("/api/v1/purchase-orders", headers=auth(s.tokens["finance"])).get_json()["purchase_orders"]


def test_two_amount_columns_are_refused_naming_both(service: Service) -> None:
    export = csv_bytes([[*HEADER, "Amount", "Amount"], [*ROW, "1000.00", "1200.00"]])
    body = problem(post(service, "/api/v1/purchase-orders", export), 422)
    assert {(i["rule"], i["cell"]) for i in body["issues"]} == {("column.ambiguous", "H1"), ("column.ambiguous", "I1")}
    assert "Amount (H1) and Amount (I1)" in body["issues"][0]["message"]
    assert "remove or rename the other" in body["issues"][0]["message"]
    assert _orders(service) == []


def test_a_base_currency_amount_beside_the_foreign_currency_one_is_refused_not_guessed(service: Service) -> None:
    netsuite = csv_bytes([[*HEADER, "Amount", "Amount (Foreign Currency)"], [*ROW, "1087.40", "1000.00"]])
    body = problem(post(service, "/api/v1/purchase-orders", netsuite), 422)
    assert {i["cell"] for i in body["issues"]} == {"H1", "I1"}
    assert "Amount (Foreign Currency) (I1)" in body["issues"][0]["message"]
    assert _orders(service) == []  # never 1,087.40 EUR stored for a 1,000.00 EUR PO


def test_the_foreign_currency_amount_alone_is_the_amount(service: Service) -> None:
    export = csv_bytes([[*HEADER, "Amount (Foreign Currency)"], [*ROW, "1000.00"]])
    assert post(service, "/api/v1/purchase-orders", export).status_code == 201
    assert [(o["po_number"], money(o["amount"]), o["currency"]) for o in _orders(service)] == [
        ("PO-1", cents("1000"), "EUR")
    ]


def test_actual_spend_with_two_amount_columns_is_refused(service: Service) -> None:
    export = csv_bytes([["Line ID", "Amount", "Net amount"], ["EMEA-0001", "10.00", "9.00"]])
    body = problem(post(service, "/api/v1/actuals", export), 422)
    assert {i["cell"] for i in body["issues"]} == {"B1", "C1"}
