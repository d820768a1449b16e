"""Every list is paged with a cursor and a cap: a client walks it page by page and sees each item once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, approved_plan, csv_bytes, line, make_service, submit
from tests.sync_service.spend_helpers import PO_HEADER, post


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, [line("EMEA-0001", m01="1000")])
    yield s
    s.store.dispose()


def _walk(s: Service, path: str, key: str, limit: int) -> list[list]:
    pages, after = [], None
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit={limit}" + (f"&after={after}" if after else "")
        body = s.client.get(url, headers=auth(s.tokens["finance"])).get_json()
        pages.append(body[key])
        after = body["next"]
        if after is None:
            return pages


def test_purchase_orders_come_a_page_at_a_time(service: Service) -> None:
    rows = [
        [f"PO-{k:03d}", "V", "10", "USD", "2026-02-01", "2026-02-28", "EMEA-0001", "", "Open", ""] for k in range(7)
    ]
    assert post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *rows])).status_code == 201
    pages = _walk(service, "/api/v1/purchase-orders", "purchase_orders", 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [o["po_number"] for p in pages for o in p] == [r[0] for r in rows]
    capped = service.client.get("/api/v1/purchase-orders?limit=1001", headers=auth(service.tokens["finance"]))
    assert problem(capped, 400)["issues"][0]["at"] == "query.limit"
    unknown = service.client.get("/api/v1/purchase-orders?after=PO-999", headers=auth(service.tokens["finance"]))
    assert "names no item" in problem(unknown, 400)["detail"]


def test_submissions_audit_and_transfers_page_by_cursor(service: Service) -> None:
    for k in range(4):
        submit(
            service.client, service.tokens["emea"], [line("EMEA-0001", m01=str(2000 + k))], based_on={"submission": 1}
        )
    submissions = _walk(service, "/api/v1/submissions", "submissions", 2)
    ids = [s["id"] for p in submissions for s in p]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 5
    events = _walk(service, "/api/v1/audit", "events", 3)
    seen = [e["id"] for p in events for e in p]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 7
    for k in range(3):
        body = {"from": {"region": "NA", "quarter": "Q3"}, "to": {"region": "EMEA", "quarter": "Q3"}, "amount": 10 + k,
                "reason": f"move {k}"}  # fmt: skip
        assert (
            service.client.post("/api/v1/transfers", headers=auth(service.tokens["finance"]), json=body).status_code
            == 201
        )
    transfers = _walk(service, "/api/v1/transfers", "transfers", 2)
    assert [len(p) for p in transfers] == [2, 1]
    queue = _walk(service, "/api/v1/approvals", "in_review", 2)
    assert sum(len(p) for p in queue) == 4  # the four plans waiting for finance
