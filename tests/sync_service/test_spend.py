"""Spend control through the API: POs and invoices against plan lines, the accrual, its journal and close.

On SQLite and PostgreSQL. Every expected figure is worked out (spend_helpers) from the rows the test
sent (straight-line over the service period's days, plan rates from the organisation file, rounded
half away from zero), never read back from the service's own answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from sync_service.platform.storage import Invoice, PurchaseOrder, SpendImport
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, approved_plan, csv_bytes, make_service, settled_jobs, xlsx_bytes
from tests.sync_service.spend_helpers import (
    INVOICE_HEADER,
    INVOICES,
    MONTHS,
    NAMES,
    PLAN,
    PO_HEADER,
    POS,
    TEAM,
    accrual,
    cents,
    convert,
    imported,
    invoiced_by,
    line_figures,
    line_for,
    money,
    post,
)


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    approved_plan(s, PLAN)
    yield s
    settled_jobs(s.store)  # the packs its closes build
    s.store.dispose()


# --- helpers ---------------------------------------------------------------------------------------------


def stored_rows(s: Service) -> tuple[int, int, int]:
    with s.store.reading() as session:
        return (
            session.query(SpendImport).count(),
            session.query(PurchaseOrder).count(),
            session.query(Invoice).count(),
        )


# --- tests -------------------------------------------------------------------------------------------


def test_imports_report_every_unmatched_row_and_are_idempotent(service: Service) -> None:
    first = post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *POS]))
    assert first.status_code == 201, first.get_data(as_text=True)
    report = first.get_json()
    assert (report["rows"], report["new"], report["changed"], report["unchanged"]) == (len(POS), len(POS), 0, 0)
    assert [u["po_number"] for u in report["unmatched"]] == ["PO-1003"]
    assert report["unmatched"][0]["row"] == 4  # the CSV's row
    assert [(a["po_number"], a["teams"]) for a in report["ambiguous"]] == [("PO-1004", [TEAM])]
    again = post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *POS]))
    assert again.status_code == 200 and again.get_json()["id"] is None
    assert (again.get_json()["new"], again.get_json()["unchanged"]) == (0, len(POS))
    assert stored_rows(service) == (1, len(POS), 0)

    bills = post(service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, *INVOICES]))
    assert bills.status_code == 201
    assert [(u["invoice_number"], u["po_number"], u["row"]) for u in bills.get_json()["unmatched"]] == [
        ("INV-4", "PO-9999", 5)
    ]
    over = bills.get_json()["over_po"]
    assert [(o["po_number"], money(o["over_by"])) for o in over] == [
        ("PO-1002", invoiced_by("PO-1002") - cents("8000"))
    ]
    assert post(service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, *INVOICES])).status_code == 200
    assert stored_rows(service) == (2, len(POS), len(INVOICES))

    # A change order: only the changed PO is stored again, and it is the one in force.
    changed = [list(p) for p in POS]
    changed[0][2] = "32000"
    answer = post(service, "/api/v1/purchase-orders", xlsx_bytes([PO_HEADER, *changed], sheet="POs"), name="po.xlsx")
    assert answer.status_code == 201 and (answer.get_json()["changed"], answer.get_json()["unchanged"]) == (1, 5)
    assert stored_rows(service) == (3, len(POS) + 1, len(INVOICES))
    orders = service.client.get("/api/v1/purchase-orders", headers=auth(service.tokens["finance"])).get_json()
    first_po = next(p for p in orders["purchase_orders"] if p["po_number"] == "PO-1001")
    assert money(first_po["amount"]) == cents("32000")
    assert money(first_po["open"]) == cents("32000") - invoiced_by("PO-1001")


def test_a_refused_import_names_each_cell_and_changes_nothing(service: Service) -> None:
    imported(service)
    before = stored_rows(service)
    spend_before = service.client.get("/api/v1/spend?by=line", headers=auth(service.tokens["finance"])).get_json()
    bad = [list(p) for p in POS]
    bad[0][2] = "lots"  # C2
    bad[1][3] = "XYZ"  # D3
    bad[2][5] = "2026-01-01"  # F4: ends before it starts
    bad[3][8] = "Maybe"  # I5
    bad.append(list(POS[4]))  # A8: PO-1005 twice
    answer = post(service, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *bad]))
    body = problem(answer, 422)
    found = {(i["cell"], i["rule"]) for i in body["issues"]}
    assert found == {
        ("C2", "po.amount"),
        ("D3", "po.currency"),
        ("F4", "po.service_period"),
        ("I5", "po.status"),
        ("A8", "po.duplicate"),
    }
    assert all(i["sheet"] == "csv" and i["message"] for i in body["issues"])
    bills = post(
        service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, ["INV-9", "PO-1001", "10", "USD", "31/02/2026"]])
    )
    assert {(i["cell"], i["rule"]) for i in problem(bills, 422)["issues"]} == {("E2", "invoice.date")}
    missing = post(service, "/api/v1/invoices", csv_bytes([["Invoice", "Amount"], ["INV-9", "10"]]))
    assert "PO number" in problem(missing, 422)["detail"]
    assert stored_rows(service) == before
    after = service.client.get("/api/v1/spend?by=line", headers=auth(service.tokens["finance"])).get_json()
    assert after["rows"] == spend_before["rows"]


@pytest.mark.parametrize("policy", ["flag", "refuse"])
def test_a_po_over_its_lines_plan_is_flagged_or_refused(database_url: str, policy: str) -> None:
    over = [["PO-2001", "Big", "70000", "USD", "2026-02-01", "2026-07-31", "EMEA-0001", "", "Open", ""]]
    s = make_service(database_url, OVER_ALLOCATION=policy)
    try:
        approved_plan(s, PLAN)
        answer = post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *over]))
        if policy == "flag":
            assert answer.status_code == 201
            (flag,) = answer.get_json()["over_plan"]
            assert (flag["line_id"], money(flag["over_by"])) == ("EMEA-0001", cents("70000") - cents("60000"))
            view = s.client.get("/api/v1/spend", headers=auth(s.tokens["finance"])).get_json()
            assert [o["line_id"] for o in view["over_plan"]] == ["EMEA-0001"]
        else:
            body = problem(answer, 422)
            assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("C2", "po.over_plan")]
            assert [o["line_id"] for o in body["over_plan"]] == ["EMEA-0001"]
            assert stored_rows(s) == (0, 0, 0)
    finally:
        s.store.dispose()


@pytest.mark.parametrize("by", ["line", "team", "region"])
def test_the_spend_view_is_plan_committed_invoiced_accrued_and_remaining(service: Service, by: str) -> None:
    imported(service)
    for month in (0, 1, 3):
        body = service.client.get(
            f"/api/v1/spend?by={by}&month={NAMES[month]}", headers=auth(service.tokens["finance"])
        ).get_json()
        assert body["purchase_orders_tracked"] is True
        expected: dict[str, dict[str, int]] = {}
        for x in PLAN:
            key = {"line": x["line_id"], "team": TEAM, "region": "EMEA"}[by]
            for name, value in line_figures(x["line_id"], month).items():
                expected.setdefault(key, {}).setdefault(name, 0)
                expected[key][name] += value
        shown = {r.get("line_id") or r.get(by): {n: money(r[n]) for n in expected[TEAM if by == "team" else
                 ("EMEA" if by == "region" else r.get("line_id"))]} for r in body["rows"]}  # fmt: skip
        assert shown == expected
    assert [p["po_number"] for p in body["unmatched_purchase_orders"]] == ["PO-1003", "PO-1004"]
    assert [i["invoice_number"] for i in body["unmatched_invoices"]] == ["INV-4"]
    assert [p["po_number"] for p in body["over_po"]] == ["PO-1002"]


def test_a_marketer_sees_their_own_teams_pos_only(service: Service) -> None:
    imported(service)
    other = service.client.get("/api/v1/purchase-orders", headers=auth(service.tokens["na"])).get_json()
    assert other["purchase_orders"] == []
    mine = service.client.get("/api/v1/purchase-orders", headers=auth(service.tokens["emea"])).get_json()
    assert {p["po_number"] for p in mine["purchase_orders"]} == {"PO-1001", "PO-1002", "PO-1005", "PO-1006"}
    view = service.client.get("/api/v1/spend", headers=auth(service.tokens["emea"])).get_json()
    assert view["unmatched_purchase_orders"] == [] and view["unmatched_invoices"] == []
    assert problem(service.client.post("/api/v1/invoices", headers=auth(service.tokens["emea"]), data=b"x"), 403)


def journal(s: Service, month: str, entries: str = "both") -> list[dict[str, str]]:
    answer = s.client.get(f"/api/v1/accruals/{month}/journal.csv?entries={entries}", headers=auth(s.tokens["finance"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_a_month_closes_from_pos_and_invoices_to_the_journal(service: Service) -> None:
    imported(service)
    finance = auth(service.tokens["finance"])
    assert service.client.get("/api/v1/accruals", headers=finance).get_json()["month"] == "m01"
    for month in (0, 1):
        name = NAMES[month]
        report = service.client.get(f"/api/v1/accruals/{name}", headers=finance).get_json()
        expected = {p[0]: accrual(p, month) for p in POS if accrual(p, month)}
        assert {e["po_number"]: money(e["accrued"]) for e in report["entries"]} == expected
        by_line = sum(line_figures(x["line_id"], month)["accrued"] for x in PLAN)
        unmatched = sum(convert(c, p[3], "USD") for p in POS for c in [expected.get(p[0], 0)] if not line_for(p))
        assert money(report["total"]) == by_line + unmatched
        rows = journal(service, name)
        accrual_rows = [r for r in rows if not r["Journal"].endswith("-REV")]
        reversal_rows = [r for r in rows if r["Journal"].endswith("-REV")]
        assert {r["Date"] for r in accrual_rows} == {MONTHS[month].last_day.isoformat()}
        assert {r["Date"] for r in reversal_rows} == {MONTHS[month + 1].first_day.isoformat()}
        for part in (accrual_rows, reversal_rows):
            for currency in {r["Currency"] for r in part}:  # each journal balances in each currency
                mine = [r for r in part if r["Currency"] == currency]
                assert sum(money(r["Debit"] or "0") for r in mine) == sum(money(r["Credit"] or "0") for r in mine)
        debits = {r["Reference"]: money(r["Debit"]) for r in accrual_rows if r["Debit"]}
        assert debits == expected
        on_line = next(r for r in accrual_rows if r["Reference"] == "PO-1006" and r["Debit"])
        assert (on_line["Account"], on_line["Cost centre"], on_line["Currency"]) == ("6140", "CC-200", "GBP")
        liability = next(r for r in accrual_rows if r["Reference"] == "PO-1006" and r["Credit"])
        assert liability["Account"] == "2150"
        assert all(r["Description"].startswith(("Accrual", "Reversal")) for r in rows)
        assert len(journal(service, name, "reversal")) == len(reversal_rows)

    assert "m01 first" in problem(service.client.post("/api/v1/accruals/m02/close", headers=finance), 409)["detail"]
    closed = service.client.post("/api/v1/accruals/m01/close", headers=finance)
    assert closed.status_code == 200 and closed.get_json()["closed"] is True
    assert problem(service.client.post("/api/v1/accruals/m01/close", headers=finance), 409)
    assert problem(service.client.post("/api/v1/accruals/m01/close", headers=auth(service.tokens["emea"])), 403)
    assert problem(service.client.get("/api/v1/accruals/m13", headers=finance), 404)
    frozen = journal(service, "m01")

    # Invoices dated in the closed month arrive late: the closed month keeps its accrual, the next one moves.
    late = [["INV-5", "PO-1006", "300", "GBP", "2026-02-20"]]
    assert post(service, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, *late])).status_code == 201
    INVOICES.extend(late)
    try:
        assert journal(service, "m01") == frozen
        report = service.client.get("/api/v1/accruals/m02", headers=finance).get_json()
        assert report["closed"] is False
        assert {e["po_number"]: money(e["accrued"]) for e in report["entries"]} == {
            p[0]: accrual(p, 1) for p in POS if accrual(p, 1)
        }
        assert service.client.get("/api/v1/accruals", headers=finance).get_json()["month"] == "m02"
    finally:
        INVOICES.remove(late[0])


def test_committed_is_the_open_po_balance_once_pos_are_imported(service: Service) -> None:
    """The plans typed no committed spend; once POs are in, every view's committed is their open balance."""
    finance = auth(service.tokens["finance"])
    before = service.client.get("/api/v1/spend", headers=finance).get_json()
    assert before["purchase_orders_tracked"] is False and money(before["totals"]["committed"]) == 0
    imported(service)
    committed = sum(line_figures(x["line_id"], 0)["committed"] for x in PLAN)
    assert committed > 0
    rollup = service.client.get("/api/v1/rollup?by=region&measure=committed&period=year", headers=finance)
    assert rollup.status_code == 200, rollup.get_data(as_text=True)
    assert sum(r["cents"] for r in rollup.get_json()["rows"]) == committed
    assert money(service.client.get("/api/v1/spend", headers=finance).get_json()["totals"]["committed"]) == committed


def test_a_cancelled_po_counts_against_no_plan_but_a_closed_one_does(database_url: str) -> None:
    s = make_service(database_url, OVER_ALLOCATION="refuse")
    try:
        approved_plan(s, PLAN)
        cancelled = [["PO-3001", "Gone", "70000", "USD", "2026-02-01", "2026-07-31", "EMEA-0001", "", "Cancelled", ""]]
        answer = post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *cancelled]))
        assert answer.status_code == 201 and answer.get_json()["over_plan"] == []
        closed = [["PO-3002", "Done", "70000", "USD", "2026-02-01", "2026-07-31", "EMEA-0001", "", "Closed", ""]]
        body = problem(post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *closed])), 422)
        assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("C2", "po.over_plan")]
        orders = s.client.get("/api/v1/purchase-orders", headers=auth(s.tokens["finance"])).get_json()
        assert [(p["po_number"], p["status"], money(p["open"])) for p in orders["purchase_orders"]] == [
            ("PO-3001", "cancelled", 0)
        ]
    finally:
        s.store.dispose()


def test_large_exports_import_as_jobs_with_the_routes_answer(service: Service) -> None:
    finance = auth(service.tokens["finance"])

    def queued(path: str, data: bytes) -> dict[str, Any]:
        answer = service.client.post(
            f"{path}?filename=export.csv",
            headers={**finance, "Prefer": "respond-async"},
            data=data,
            content_type="text/csv",
        )
        assert answer.status_code == 202, answer.get_data(as_text=True)
        done = service.client.get(answer.headers["Location"], headers={**finance, "Prefer": "wait=20"}).get_json()
        assert done["status"] in ("succeeded", "failed"), done
        return done

    done = queued("/api/v1/purchase-orders", csv_bytes([PO_HEADER, *POS]))
    assert done["status"] == "succeeded" and done["kind"] == "purchase_orders.import"
    assert (done["result"]["new"], [u["po_number"] for u in done["result"]["unmatched"]]) == (len(POS), ["PO-1003"])
    again = queued("/api/v1/purchase-orders", csv_bytes([PO_HEADER, *POS]))
    assert again["status"] == "succeeded" and again["result"]["unchanged"] == len(POS)
    bills = queued("/api/v1/invoices", csv_bytes([INVOICE_HEADER, *INVOICES]))
    assert bills["status"] == "succeeded" and bills["result"]["new"] == len(INVOICES)
    refused = queued("/api/v1/invoices", csv_bytes([INVOICE_HEADER, ["INV-X", "PO-1001", "many", "USD", "2026-03-01"]]))
    assert refused["status"] == "failed" and "not valid" in refused["error"]
    assert stored_rows(service) == (2, len(POS), len(INVOICES))


def test_review_cases_case_late_matches_early_invoices_and_lines_further_over(database_url: str) -> None:
    """A PO number's case changes; a PO matched to a line after its month closed; an invoice before its PO."""
    s = make_service(database_url, OVER_ALLOCATION="refuse")
    try:
        approved_plan(s, PLAN)
        finance = auth(s.tokens["finance"])
        one = [["po-7", "V", "100", "USD", "2026-02-01", "2026-02-28", "EMEA-0001", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *one])).status_code == 201
        upper = [["PO-7", "V", "200", "USD", "2026-02-01", "2026-02-28", "EMEA-0001", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *upper])).get_json()["changed"] == 1
        again = post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *upper]))
        assert again.status_code == 200 and again.get_json()["unchanged"] == 1
        orders = s.client.get("/api/v1/purchase-orders", headers=finance).get_json()["purchase_orders"]
        assert [(p["po_number"], money(p["amount"])) for p in orders] == [("PO-7", cents("200"))]

        # An unmatched PO accrues in m01, which closes; matched to a line later, m01 stays as it was closed.
        lost = [["PO-8", "V", "500", "USD", "2026-02-01", "2026-02-28", "NOPE-1", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *lost])).status_code == 201
        closed = s.client.post("/api/v1/accruals/m01/close", headers=finance).get_json()
        found = [["PO-8", "V", "500", "USD", "2026-02-01", "2026-02-28", "EMEA-0003", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *found])).status_code == 201
        after = s.client.get("/api/v1/accruals/m01", headers=finance).get_json()
        assert (after["total"], after["by_team"], after["not_on_a_line"]) == (
            closed["total"],
            closed["by_team"],
            closed["not_on_a_line"],
        )

        # An invoice without a currency for a PO not imported yet is in that PO's currency once it comes.
        early = [["INV-E", "PO-EUR", "1000", "", "2026-03-02"]]
        assert post(s, "/api/v1/invoices", csv_bytes([INVOICE_HEADER, *early])).status_code == 201
        eur = [["PO-EUR", "V", "1000", "EUR", "2026-03-01", "2026-03-31", "EMEA-0002", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *eur])).status_code == 201
        orders = s.client.get("/api/v1/purchase-orders", headers=finance).get_json()["purchase_orders"]
        po = next(p for p in orders if p["po_number"] == "PO-EUR")
        assert (money(po["invoiced"]), money(po["open"])) == (cents("1000"), 0)

        # Under refuse, a line already at its plan takes no further PO.
        big = [["PO-9", "V", "59800", "USD", "2026-02-01", "2026-07-31", "EMEA-0001", "", "Open", ""]]
        assert post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *big])).status_code == 201  # 60,000 in all
        more = [["PO-10", "V", "10", "USD", "2026-02-01", "2026-07-31", "EMEA-0001", "", "Open", ""]]
        assert problem(post(s, "/api/v1/purchase-orders", csv_bytes([PO_HEADER, *more])), 422)
    finally:
        settled_jobs(s.store)
        s.store.dispose()
