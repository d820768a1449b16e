"""Finance's exports as the systems write them: each preset's sample (docs/samples/) imports as it comes.

The samples are made by us in each system's own layout (headers, status words, dates, report
titles, totals rows, base- and document-currency amounts side by side). What each should give
is written out here by hand from the sample's rows, never read back from the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.service_helpers import Service, as_json, cents, csv_bytes, line, make_service
from tests.sync_service.spend_helpers import post

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
PLAN = [  # the lines the samples' campaigns are planned on
    line("EMEA-0001", code="EVT-SUMMIT", currency="EUR", m03="20000", m04="5000"),
    line("EMEA-0002", channel="Webinars", code="WEB-SERIES", m02="6000", m05="2500"),
    line("EMEA-0003", channel="ABM", code="ABM-Q2", currency="GBP", m04="4000", m05="4000", m06="4000"),
]

# Each sample's POs: number -> (currency, amount in the PO's own currency, Plansheet's status)
NETSUITE_POS = {
    "PO1041": ("EUR", "20000.00", "open"),  # Pending Receipt
    "PO1042": ("USD", "6000.00", "closed"),  # Fully Billed
    "PO1043": ("GBP", "8000.00", "open"),  # Partially Received
    "PO1044": ("EUR", "3000.00", "cancelled"),  # NetSuite's Closed: closed before it was fulfilled
    "PO1045": ("USD", "2500.00", "open"),  # Pending Supervisor Approval
}
ARIBA_POS = {
    "EP10021": ("EUR", "20000.00", "open"),
    "EP10022": ("USD", "6000.00", "closed"),
    "EP10023": ("GBP", "8000.00", "open"),
    "EP10024": ("EUR", "3000.00", "cancelled"),
}
COUPA_POS = {
    "4101": ("EUR", "20000.00", "open"),
    "4102": ("USD", "6000.00", "closed"),
    "4103": ("GBP", "8000.00", "open"),  # buyer_hold
    "4104": ("EUR", "3000.00", "cancelled"),
}
# Each invoice sample: PO number -> what was invoiced against it, in the PO's currency
INVOICED = {
    "netsuite": {"PO1041": "10000.00", "PO1042": "6000.00", "PO1043": "2666.67"},
    "ariba": {"EP10021": "10000.00", "EP10022": "6000.00", "EP10023": "2666.67"},
    "coupa": {"4101": "10000.00", "4102": "6000.00", "4103": "2666.67"},
}
# The general ledgers: every sample books the same spend in the lines' own currencies
ACTUAL = {"EMEA-0001": "10000.00", "EMEA-0002": "5500.00", "EMEA-0003": "2666.67"}
ACTUAL_BASE = {"EMEA-0001": "10800.00", "EMEA-0002": "5500.00", "EMEA-0003": "3386.67"}  # in USD


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    body = {"team": "EMEA-ENTERPRISE", "lines": [as_json(x) for x in PLAN]}
    sent = s.client.post("/api/v1/submissions", headers=auth(s.tokens["finance2"]), json=body)
    assert sent.status_code == 201, sent.get_data(as_text=True)
    approved = s.client.post(f"/api/v1/submissions/{sent.get_json()['id']}/approve",
                             headers=auth(s.tokens["finance"]), json={"comment": "ok"})  # fmt: skip
    assert approved.status_code == 200, approved.get_data(as_text=True)
    yield s
    s.store.dispose()


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _imported(s: Service, path: str, sample: str, query: str = "") -> dict[str, Any]:
    answer = s.client.post(f"{path}?filename={sample}" + (f"&{query}" if query else ""),
                           headers=auth(s.tokens["finance"]), data=_sample(sample),
                           content_type="application/octet-stream")  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def _pos(s: Service) -> dict[str, dict[str, Any]]:
    answer = s.client.get("/api/v1/purchase-orders", headers=auth(s.tokens["finance"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {p["po_number"]: p for p in answer.get_json()["purchase_orders"]}


@pytest.mark.parametrize(
    ("sample", "preset", "expected"),
    [
        ("netsuite_purchase_orders.csv", "netsuite_purchase_orders", NETSUITE_POS),
        ("sap_ariba_purchase_orders.csv", "sap_ariba_purchase_orders", ARIBA_POS),
        ("coupa_purchase_orders.csv", "coupa_purchase_orders", COUPA_POS),
    ],
)
def test_each_po_export_imports_as_it_comes(service: Service, sample: str, preset: str, expected: dict) -> None:
    answer = _imported(service, "/api/v1/purchase-orders", sample)
    assert answer["read_by"]["preset"] == preset
    assert (answer["rows"], answer["new"], answer["unmatched"]) == (len(expected), len(expected), [])
    held = _pos(service)
    got = {n: (p["currency"], p["amount"], p["status"]) for n, p in held.items()}
    assert got == expected
    # Matched by the budget line where the export carries one, else by the campaign code.
    assert {held[n]["line_id"] for n in expected} == {"EMEA-0001", "EMEA-0002", "EMEA-0003"}


def test_a_netsuite_po_export_with_both_amounts_reads_the_foreign_currency_one_and_says_so(service: Service) -> None:
    answer = _imported(service, "/api/v1/purchase-orders", "netsuite_purchase_orders.csv")
    not_read = {u["column"]: u for u in answer["read_by"]["columns_not_read"]}
    assert not_read["Amount"]["cell"] == "H1" and "base currency" in not_read["Amount"]["why"]
    assert _pos(service)["PO1041"]["amount"] == "20000.00"  # Amount (Foreign Currency), never the 21,600.00 beside it
    # The same columns without the preset's order of preference are refused naming both, never guessed.
    header, *rows = _sample("netsuite_purchase_orders.csv").decode().splitlines()
    plain = header.replace("Document Number", "PO number").replace("Status", "PO status")
    refused = post(service, "/api/v1/purchase-orders", "\n".join([plain, *rows]).encode())
    assert problem(refused, 422)["issues"][0]["rule"] == "column.ambiguous"


@pytest.mark.parametrize(
    ("pos", "bills", "preset", "invoiced"),
    [
        ("netsuite_purchase_orders.csv", "netsuite_vendor_bills.csv", "netsuite_vendor_bills", INVOICED["netsuite"]),
        ("sap_ariba_purchase_orders.csv", "sap_ariba_invoices.csv", "sap_ariba_invoices", INVOICED["ariba"]),
        ("coupa_purchase_orders.csv", "coupa_invoices.csv", "coupa_invoices", INVOICED["coupa"]),
    ],
)
def test_each_invoice_export_imports_as_it_comes(
    service: Service, pos: str, bills: str, preset: str, invoiced: dict[str, str]
) -> None:
    _imported(service, "/api/v1/purchase-orders", pos)
    answer = _imported(service, "/api/v1/invoices", bills)
    assert answer["read_by"]["preset"] == preset
    assert answer["rows"] == 4 and answer["new"] == 4
    held = _pos(service)
    assert {n: held[n]["invoiced"] for n in invoiced} == invoiced  # "Purchase Order #PO1041" is PO1041


@pytest.mark.parametrize(
    ("sample", "preset", "in_line_currency"),
    [
        ("netsuite_gl.csv", "netsuite_gl", False),  # the Transaction Detail report: base currency (USD) only
        ("sap_s4hana_line_items.csv", "sap_s4hana_line_items", True),
        ("quickbooks_gl.csv", "quickbooks_gl", False),
        ("xero_gl.csv", "xero_gl", False),
    ],
)
def test_each_general_ledger_imports_as_it_comes(
    service: Service, sample: str, preset: str, in_line_currency: bool
) -> None:
    answer = _imported(service, "/api/v1/actuals", sample)
    assert answer["read_by"]["preset"] == preset
    assert answer["rows"] == 5 and answer["matched"] == 5 and answer["unmatched"] == []
    master = service.client.get("/api/v1/master", headers=auth(service.tokens["finance"])).get_json()
    actual = {x["line_id"]: x["actual"] for x in master["lines"]}
    if in_line_currency:  # each row in its own transaction currency: the line's
        assert actual == {k: cents(v) for k, v in ACTUAL.items()}
    else:  # every row in USD, converted to the line's currency at the plan rate: compare the USD line exactly
        assert actual["EMEA-0002"] == cents(ACTUAL_BASE["EMEA-0002"])
        assert answer["total"] == "19686.67"
    # Report titles, account headings and totals rows are skipped, and said so.
    skipped = answer["read_by"].get("rows_skipped", [])
    assert all(r["reason"] for r in skipped)
    assert len(skipped) == {"netsuite_gl": 1, "sap_s4hana_line_items": 0, "quickbooks_gl": 7, "xero_gl": 12}[preset]


def test_amounts_written_with_their_currency_import_and_must_agree_with_it(service: Service) -> None:
    header = ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Status"]
    rows = [
        ["P-1", "A", "EUR 12,345.67", "EUR", "2026-04-01", "2026-04-30", "EMEA-0001", "Open"],
        ["P-2", "B", "R$1,000.00", "", "2026-04-01", "2026-04-30", "EMEA-0001", "Open"],
        ["P-3", "C", "2,500.00 £", "", "2026-04-01", "2026-04-30", "EMEA-0003", "Open"],
        ["P-4", "D", "US$ 300", "US Dollar", "2026-04-01", "2026-04-30", "EMEA-0002", "Open"],
    ]
    answer = post(service, "/api/v1/purchase-orders", csv_bytes([header, *rows]))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    held = _pos(service)
    assert {n: (held[n]["currency"], held[n]["amount"]) for n in held} == {
        "P-1": ("EUR", "12345.67"), "P-2": ("BRL", "1000.00"), "P-3": ("GBP", "2500.00"), "P-4": ("USD", "300.00"),
    }  # fmt: skip
    wrong = [*header], [["P-9", "E", "EUR 10", "USD", "2026-04-01", "2026-04-30", "EMEA-0001", "Open"],
                        ["P-8", "F", "CHF 10", "", "2026-04-01", "2026-04-30", "EMEA-0001", "Open"]]  # fmt: skip
    refused = problem(post(service, "/api/v1/purchase-orders", csv_bytes([wrong[0], *wrong[1]])), 422)
    cells = {i["cell"]: i["message"] for i in refused["issues"]}
    assert "is in EUR, but the row's currency is USD" in cells["C2"]
    assert "'CHF' is not the code or symbol of a plan currency" in cells["C3"]
    assert set(_pos(service)) == {"P-1", "P-2", "P-3", "P-4"}  # the refused file changed nothing


def test_a_preset_can_be_named_and_an_unknown_one_is_refused_naming_those_there_are(service: Service) -> None:
    named = _imported(service, "/api/v1/purchase-orders", "coupa_purchase_orders.csv", "preset=coupa_purchase_orders")
    assert named["read_by"]["preset"] == "coupa_purchase_orders"
    refused = service.client.post("/api/v1/purchase-orders?filename=x.csv&preset=oracle_fusion",
                                  headers=auth(service.tokens["finance"]), data=_sample("coupa_purchase_orders.csv"),
                                  content_type="text/csv")  # fmt: skip
    assert "netsuite_purchase_orders" in problem(refused, 422)["detail"]


# --- saved column mappings (import profiles) ----------------------------------------------------------------------

LEGACY = [  # an export no preset knows: its own headers, status words and month-first dates
    ["Doc No", "Supplier Name", "Value", "Cur", "From", "To", "Budget Ref", "State"],
    ["L-1", "Hall Ltd", "1,000.00", "EUR", "04/01/2026", "04/10/2026", "EMEA-0001", "Live"],
    ["L-2", "Webcast Co", "750.00", "USD", "05/01/2026", "05/11/2026", "EMEA-0002", "Done"],
    ["L-3", "Void Inc", "99.00", "USD", "05/01/2026", "05/02/2026", "EMEA-0002", "Void"],
]
LEGACY_PROFILE = {
    "name": "Legacy ERP",
    "fields": {"po_number": "Doc No", "vendor": "Supplier Name", "amount": "Value", "currency": "Cur",
               "service_start": "From", "service_end": "To", "line_id": "Budget Ref", "status": "State"},
    "values": {"status": {"Live": "open", "Done": "closed", "Void": "cancelled"}},
    "date_order": "mdy",
}  # fmt: skip


def _finance(s: Service) -> dict[str, str]:
    return auth(s.tokens["finance"])


def test_a_saved_profile_reads_an_export_no_preset_knows_by_name_or_remembered(service: Service) -> None:
    export = csv_bytes(LEGACY)
    problem(post(service, "/api/v1/purchase-orders", export), 422)  # no preset knows it
    saved = service.client.post("/api/v1/import-profiles/purchase_orders", headers=_finance(service),
                                json=LEGACY_PROFILE)  # fmt: skip
    assert saved.status_code == 201, saved.get_data(as_text=True)
    assert saved.get_json()["saved_by"] == "fiona" and not saved.get_json()["remember"]
    again = service.client.post("/api/v1/import-profiles/purchase_orders", headers=_finance(service),
                                json=LEGACY_PROFILE)  # fmt: skip
    problem(again, 409)
    answer = service.client.post("/api/v1/purchase-orders?filename=legacy.csv&profile=legacy erp",
                                 headers=_finance(service), data=export, content_type="text/csv")  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["read_by"]["profile"] == "Legacy ERP"
    held = _pos(service)
    assert {n: (p["status"], p["service_start"]) for n, p in held.items()} == {
        "L-1": ("open", "2026-04-01"), "L-2": ("closed", "2026-05-01"), "L-3": ("cancelled", "2026-05-01"),
    }  # fmt: skip
    missing = service.client.post("/api/v1/purchase-orders?filename=l.csv&profile=Nope", headers=_finance(service),
                                  data=export, content_type="text/csv")  # fmt: skip
    assert "Legacy ERP" in problem(missing, 404)["detail"]
    # Remembered: an export whose header carries the profile's headers is read by it without naming it.
    changed = service.client.put("/api/v1/import-profiles/purchase_orders/Legacy ERP", headers=_finance(service),
                                 json={**LEGACY_PROFILE, "remember": True})  # fmt: skip
    assert changed.status_code == 200 and changed.get_json()["revision"] > saved.get_json()["revision"]
    later = csv_bytes([LEGACY[0], ["L-4", "Hall Ltd", "10.00", "EUR", "06/01/2026", "06/30/2026", "EMEA-0001", "Live"]])
    remembered = post(service, "/api/v1/purchase-orders", later)
    assert remembered.status_code == 201, remembered.get_data(as_text=True)
    assert remembered.get_json()["read_by"]["profile"] == "Legacy ERP"
    listed = service.client.get("/api/v1/import-profiles?kind=purchase_orders", headers=_finance(service)).get_json()
    assert [(p["name"], p["remember"]) for p in listed["profiles"]] == [("Legacy ERP", True)]
    # Retired: it reads nothing any more, and the export is refused as before.
    retired = service.client.delete("/api/v1/import-profiles/purchase_orders/Legacy ERP", headers=_finance(service))
    assert retired.status_code == 200 and retired.get_json()["retired"]
    assert service.client.get("/api/v1/import-profiles", headers=_finance(service)).get_json()["profiles"] == []
    problem(post(service, "/api/v1/purchase-orders", csv_bytes([LEGACY[0], LEGACY[1]])), 422)


def test_a_profile_is_checked_field_by_field_and_nothing_is_saved_when_any_is_wrong(service: Service) -> None:
    wrong = {"name": "bad", "fields": {"colour": "Colour", "amount": "Value"},
             "values": {"status": {"Live": "maybe"}, "vendor": {"x": "y"}}}  # fmt: skip
    refused = problem(service.client.post("/api/v1/import-profiles/purchase_orders", headers=_finance(service),
                                          json=wrong), 422)  # fmt: skip
    at = {i["at"] for i in refused["issues"]}
    assert at == {"fields.colour", "values.status.Live", "values.vendor"}
    assert "open, closed, cancelled" in next(i["message"] for i in refused["issues"] if i["at"] == "values.status.Live")
    assert service.client.get("/api/v1/import-profiles", headers=_finance(service)).get_json()["profiles"] == []
    marketer = service.client.post("/api/v1/import-profiles/actuals", headers=auth(service.tokens["emea"]),
                                   json={"name": "mine", "fields": {"amount": "Value"}})  # fmt: skip
    problem(marketer, 403)


def test_a_background_import_reads_its_export_with_the_profile_its_request_named(service: Service) -> None:
    saved = service.client.post("/api/v1/import-profiles/purchase_orders", headers=_finance(service),
                                json=LEGACY_PROFILE)  # fmt: skip
    assert saved.status_code == 201
    headers = {**_finance(service), "Prefer": "respond-async, wait=20"}
    answer = service.client.post("/api/v1/purchase-orders?filename=legacy.csv&profile=Legacy ERP", headers=headers,
                                 data=csv_bytes(LEGACY), content_type="text/csv")  # fmt: skip
    job = answer.get_json()
    assert answer.status_code in (200, 202), job
    for _ in range(100):
        if job["status"] in ("succeeded", "failed"):
            break
        job = service.client.get(
            f"/api/v1/jobs/{job['id']}", headers={**_finance(service), "Prefer": "wait=5"}
        ).get_json()
    assert job["status"] == "succeeded", job
    assert job["result"]["read_by"]["profile"] == "Legacy ERP" and job["result"]["new"] == 3


def test_every_preset_has_a_sample_that_a_test_here_imports() -> None:
    from sync_service.platform import presets

    tried = {
        "netsuite_purchase_orders", "sap_ariba_purchase_orders", "coupa_purchase_orders", "netsuite_vendor_bills",
        "sap_ariba_invoices", "coupa_invoices", "netsuite_gl", "sap_s4hana_line_items", "quickbooks_gl", "xero_gl",
    }  # fmt: skip
    assert {p.name for kind in presets.KINDS for p in presets.PRESETS[kind]} == tried
    assert {p.stem for p in SAMPLES.glob("*.csv")} >= tried
