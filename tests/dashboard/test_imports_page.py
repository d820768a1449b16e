"""Finance's imports in the browser: a saved mapping made in the page, the preview, the import and its report.

In Chromium against the real service: fiona saves a mapping for a legacy ERP's purchase orders
(a refused name is said at its field, what she typed is kept), previews an export with it (which
column is which field, the first rows as read, nothing stored yet), imports it and reads the report;
NetSuite's general ledger is recognised as its preset; a file with a bad cell is refused at that
cell and stores nothing; a marketer cannot open the page. Through the test client: each route is
finance's, an upload waits for its confirmation in the session that sent it and is imported once,
the results of the CRM and amounts in the rows' own currencies.

Every expected figure is worked out here from the rows the test sends, never read back from the service.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sync_service.access.passwords import set_password
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.dashboard.web_helpers import PASSWORD, csrf, signed_in, text
from tests.sync_service.live_server import as_json, call
from tests.sync_service.service_helpers import approved_plan, line, make_service

pytestmark = pytest.mark.chromium

SCHEMA = build_schema(load_config())
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
TEAM = "EMEA-ENTERPRISE"
PLAN = [
    line("EMEA-0001", code="EVT-SUMMIT", m03="20000", m04="20000"),
    line("EMEA-0002", channel="Webinars", code="WEB-SERIES", m02="5000", m03="5000"),
    line("EMEA-0003", channel="Content", code="ABM-Q2", m04="3000"),
]
PLAN_IDS = {x["line_id"] for x in PLAN}

# A legacy ERP's purchase orders: headers and status words no preset knows, dates day first.
MAPPING = {
    "po_number": "Doc No",
    "vendor": "Supplier Name",
    "amount": "Value",
    "currency": "Cur",
    "service_start": "From",
    "service_end": "To",
    "line_id": "Budget Ref",
    "status": "State",
}
WORDS = {"open": "Live", "closed": "Done", "cancelled": "Void"}
LEGACY = [
    ["Doc No", "Supplier Name", "Value", "Cur", "From", "To", "Budget Ref", "State", "Notes"],
    ["L-1", "Hall & Stand Ltd", "12,500.00", "USD", "01/03/2026", "31/05/2026", "EMEA-0001", "Live", "Spring booth"],
    ["L-2", "Webinar Co", "4,000.00", "USD", "15/04/2026", "30/06/2026", "EMEA-0002", "Done", ""],
    ["L-3", "Nobody's line", "750.00", "USD", "01/02/2026", "28/02/2026", "NOPE-9", "Live", ""],
    ["L-4", "Cancelled Inc", "2,000.00", "USD", "01/03/2026", "31/03/2026", "EMEA-0001", "Void", ""],
    ["L-5", "Content House", "5,000.00", "USD", "01/05/2026", "31/05/2026", "EMEA-0003", "Live", ""],
]


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def cents(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * 100)


def money(amount_cents: int, currency: str = "USD", code: bool = False) -> str:
    """An amount as finance writes it: thousands separated, two decimals, the code where currencies mix."""
    text = f"{Decimal(abs(amount_cents)) / 100:,.2f}"
    shown = f"{currency}\u00a0{text}" if code else f"${text}"  # the code and the amount never part
    return f"({shown})" if amount_cents < 0 else shown


def planned(line_id: str) -> int:
    found = next(x for x in PLAN if x["line_id"] == line_id)
    return sum(cents(str(v)) for k, v in found.items() if re.fullmatch(r"m\d\d", k))


def cell_texts(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.innerText.trim()))"
    )


def fits_a_phone(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def purchase_orders(base: str, token: str) -> list[dict[str, Any]]:
    status, body = call(base, token, "GET", "/api/v1/purchase-orders?limit=500")
    assert status == 200, body
    return body["purchase_orders"]


@pytest.fixture(scope="module")
def plan(site: tuple[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The site with maria's plan approved by fiona: three lines, each its campaign code."""
    base, tokens = site
    status, body = call(
        base, tokens["maria"], "POST", "/api/v1/submissions", {"team": TEAM, "lines": [as_json(x) for x in PLAN]}
    )
    assert status == 201, body
    status, body = call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{body['id']}/approve", {})
    assert status == 200, body
    return base, tokens


def choose_file(page: Any, name: str, data: bytes) -> None:
    page.set_input_files("#field-file", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])


# --- in Chromium --------------------------------------------------------------------------------------


def test_fiona_saves_a_mapping_previews_a_po_export_with_it_imports_it_and_reads_the_report(
    plan: tuple[str, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    base, tokens = plan
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/imports")
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Purchase orders"
    page.screenshot(path=tmp_path / "imports-1440.png", full_page=True)

    page.click("#new-profile")
    page.wait_for_url(f"{base}/imports/mappings/new?kind=purchase_orders")
    page.fill("#field-name", "Legacy/ERP")
    for field, header in MAPPING.items():
        page.fill(f"#field-fields-{field}", header)
    for meaning, word in WORDS.items():
        page.fill(f"#field-values-status-{meaning}", word)
    page.select_option("#field-date_order", "dmy")
    page.click("#profile-form button[type=submit]")
    # A name the API would refuse: said at the top and at the field; what was typed is kept; nothing is saved.
    assert "There is a problem" in page.inner_text(".error-summary")
    assert page.locator(".error-summary a[href='#field-name']").count() == 1
    assert page.get_attribute("#field-name", "aria-invalid") == "true"
    assert page.locator(".field-error #error-name").count() == 1
    assert page.input_value("#field-name") == "Legacy/ERP"
    assert {f: page.input_value(f"#field-fields-{f}") for f in MAPPING} == MAPPING
    assert page.input_value("#field-values-status-closed") == "Done"
    status, body = call(base, tokens["fiona"], "GET", "/api/v1/import-profiles")
    assert status == 200 and body["profiles"] == []
    page.screenshot(path=tmp_path / "mapping-refused-1440.png", full_page=True)

    page.fill("#field-name", "Legacy ERP")
    page.click("#profile-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/imports\?kind=purchase_orders&profile=Legacy"))
    saved = page.locator("#import-profiles tr[data-profile='Legacy ERP']")
    assert "PO number: Doc No" in saved.inner_text() and "Void → cancelled" in saved.inner_text()
    assert page.input_value("#field-profile") == "Legacy ERP"  # the mapping just saved is chosen
    status, body = call(base, tokens["fiona"], "GET", "/api/v1/import-profiles?kind=purchase_orders")
    assert [(p["name"], p["fields"], p["date_order"]) for p in body["profiles"]] == [("Legacy ERP", MAPPING, "dmy")]

    choose_file(page, "legacy-pos.csv", csv_bytes(LEGACY))
    page.click("#import-form button[type=submit]")
    page.wait_for_url(f"{base}/imports/preview")
    assert "Legacy ERP" in page.inner_text("#read-by")
    assert page.inner_text("#date-order") == "Day first: 04/05/2026 is 4 May (the mapping's)"
    rows = LEGACY[1:]
    assert page.inner_text("#rows-read").startswith(f"{len(rows)} rows will be imported")
    read = {r[0]: r[1] for r in cell_texts(page, "#columns-read")}
    labels = {"po_number": "PO number", "vendor": "Vendor", "amount": "Amount", "currency": "Currency",
              "service_start": "Service start", "service_end": "Service end", "line_id": "Line ID",
              "status": "Status"}  # fmt: skip
    assert read == {labels[f]: h for f, h in MAPPING.items()}
    assert [r[0] for r in cell_texts(page, "#columns-not-read")] == ["Notes"]
    grid = page.locator("#preview")
    assert grid.locator("tr.header-row").get_attribute("data-row") == "1"
    assert [grid.locator(f"td[data-cell=A{i}]").inner_text() for i in range(2, len(rows) + 2)] == [r[0] for r in rows]
    assert "Supplier Name" in grid.locator("td[data-cell=B1]").inner_text()
    assert purchase_orders(base, tokens["fiona"]) == []  # the preview stores nothing
    page.screenshot(path=tmp_path / "preview-1440.png", full_page=True)

    page.click("#confirm-form button[type=submit]")
    page.wait_for_load_state("load")
    assert page.get_attribute("#import-outcome", "data-status") == "201"
    assert page.inner_text("#import-outcome") == f"Stored {len(rows)} new and 0 changed purchase orders."
    summary = {r[0]: r[1] for r in cell_texts(page, "#report-summary")}
    matched = [r for r in rows if r[6] in PLAN_IDS]
    assert summary["Rows read"] == str(len(rows)) and summary["New, stored"] == str(len(rows))
    assert summary["Matched to a plan line"] == str(len(matched))
    assert [r[:2] for r in cell_texts(page, "#unmatched")] == [
        [str(i + 2), r[0]] for i, r in enumerate(rows) if r[6] not in PLAN_IDS
    ]
    # EMEA-0003's plan is smaller than its live purchase orders: over by the difference, in the line's currency.
    live = sum(cents(r[2]) for r in rows if r[6] == "EMEA-0003" and r[7] != WORDS["cancelled"])
    over = cell_texts(page, "#over-plan")
    assert over == [[TEAM, "EMEA-0003", money(planned("EMEA-0003"), code=True), money(live, code=True),
                     money(live - planned("EMEA-0003"), code=True)]]  # fmt: skip
    page.screenshot(path=tmp_path / "report-1440.png", full_page=True)

    stored = {p["po_number"]: p for p in purchase_orders(base, tokens["fiona"])}
    meaning = {word: m for m, word in WORDS.items()}
    assert {n: p["status"] for n, p in stored.items()} == {r[0]: meaning[r[7]] for r in rows}
    assert {n: cents(p["amount"]) for n, p in stored.items()} == {r[0]: cents(r[2]) for r in rows}

    page.goto(f"{base}/imports/preview")  # the upload was taken by its import: nothing waits any more
    assert page.url == f"{base}/imports"
    assert "no file waiting" in page.inner_text(".flash.error")
    assert len(purchase_orders(base, tokens["fiona"])) == len(rows)


def test_a_netsuite_ledger_is_read_as_its_preset_and_imported_on_a_phone(
    plan: tuple[str, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    base, _ = plan
    raw = (SAMPLES / "netsuite_gl.csv").read_bytes()
    lines = list(csv.reader(io.StringIO(raw.decode())))
    header = next(i for i, r in enumerate(lines) if r[:1] == ["Type"])
    body = [(i + 1, r) for i, r in enumerate(lines) if i > header and any(r)]
    totals = [n for n, r in body if r[0].startswith("Total")]
    transactions = [r for _, r in body if not r[0].startswith("Total")]

    page = log_in(browser, base, "fiona", PHONE)
    page.goto(f"{base}/imports?kind=actuals")
    fits_a_phone(page)
    page.screenshot(path=tmp_path / "imports-390.png", full_page=True)
    choose_file(page, "netsuite_gl.csv", raw)
    page.click("#import-form button[type=submit]")
    page.wait_for_url(f"{base}/imports/preview")
    assert "NetSuite general ledger" in page.inner_text("#read-by")
    assert "found from the file's header" in page.inner_text("#read-by")
    assert page.inner_text("#date-order").startswith("Month first")  # NetSuite writes 4/30/2026
    assert page.locator("#preview tr.header-row").get_attribute("data-row") == str(header + 1)
    assert page.inner_text("#rows-read").startswith(f"{len(transactions)} rows will be imported")
    assert [int(r[0]) for r in cell_texts(page, "#rows-skipped")] == totals
    read = {r[1] for r in cell_texts(page, "#columns-read")}
    assert {"Class", "Amount", "Date"} <= read
    fits_a_phone(page)
    page.screenshot(path=tmp_path / "preview-390.png", full_page=True)

    page.click("#confirm-form button[type=submit]")
    page.wait_for_load_state("load")
    fits_a_phone(page)
    summary = {r[0]: r[1] for r in cell_texts(page, "#report-summary")}
    codes = {x["campaign_code"] for x in PLAN}
    total = sum(cents(r[7].strip("()")) * (-1 if r[7].startswith("(") else 1) for r in transactions if r[6] in codes)
    assert summary["Rows read"] == str(len(transactions))
    assert summary["Matched to a plan line"] == str(sum(1 for r in transactions if r[6] in codes))
    assert summary["Rows skipped"] == str(len(totals))
    assert summary["Actual spend of the matched rows"] == money(total)
    page.screenshot(path=tmp_path / "report-390.png", full_page=True)


def test_a_file_with_a_bad_cell_is_refused_at_that_cell_and_stores_nothing(
    plan: tuple[str, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    base, tokens = plan
    before = purchase_orders(base, tokens["fiona"])
    rows = [
        ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Status"],
        ["B-1", "Good Co", "1,000.00", "USD", "2026-03-01", "2026-03-31", "EMEA-0001", "Open"],
        ["B-2", "Typo Ltd", "12,5O0.00", "USD", "2026-03-01", "2026-03-31", "EMEA-0002", "Open"],
        ["B-3", "Good Co", "300.00", "USD", "2026-04-01", "2026-04-30", "EMEA-0003", "Open"],
    ]
    bad = "C3"  # the amount of B-2, with a letter O for a zero
    for viewport, width in ((LAPTOP, 1440), (PHONE, 390)):
        page = log_in(browser, base, "fiona", viewport)
        page.goto(f"{base}/imports")
        choose_file(page, "bad.csv", csv_bytes(rows))
        page.click("#import-form button[type=submit]")
        page.wait_for_url(f"{base}/imports/preview")
        assert page.inner_text("h1") == "The file cannot be imported"
        link = page.locator(f".error-summary a[href='#field-cell-{bad}']")
        assert link.count() == 1 and link.inner_text().startswith(f"{bad}: ")
        cell = page.locator(f"#preview td#field-cell-{bad}")
        assert "refused" in cell.get_attribute("class")
        assert "12,5O0.00" in cell.inner_text() and "not an amount" in cell.locator(".error-message").inner_text()
        assert page.locator("#preview td.refused").count() == 1
        assert page.locator("#confirm-form").count() == 0
        if width == PHONE["width"]:
            fits_a_phone(page)
        page.screenshot(path=tmp_path / f"refused-{width}.png", full_page=True)
    assert purchase_orders(base, tokens["fiona"]) == before


def test_a_marketer_cannot_open_the_imports_page(plan: tuple[str, dict[str, str]], browser: Any) -> None:
    base, _ = plan
    page = log_in(browser, base, "maria", LAPTOP)
    assert page.locator("header nav a", has_text="Imports").count() == 0
    answer = page.goto(f"{base}/imports")
    assert answer.status == 403 and answer.headers["content-type"].startswith("text/html")
    assert page.locator("#import-form").count() == 0 and page.locator("input[type=file]").count() == 0


# --- through the test client --------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Any]:
    s = make_service(f"sqlite:///{tmp_path / 'imports.db'}")
    with s.store.transaction() as session:
        for name in ("maria", "fiona", "frank"):
            set_password(session, name, PASSWORD)
    approved_plan(s, PLAN)
    yield s
    s.store.dispose()


def upload(client: Any, kind: str, data: bytes, name: str = "export.csv", **form: str) -> Any:
    token = csrf(client.get(f"/imports?kind={kind}").get_data(as_text=True))
    fields = {"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), name), **form}
    return client.post("/imports", data=fields, content_type="multipart/form-data")


def upload_token(client: Any) -> tuple[str, str]:
    page = client.get("/imports/preview").get_data(as_text=True)
    return csrf(page), re.search(r'name="upload" value="([^"]+)"', page).group(1)


def api_purchase_orders(s: Any) -> list[dict[str, Any]]:
    answer = s.client.get("/api/v1/purchase-orders", headers={"Authorization": f"Bearer {s.tokens['finance']}"})
    return answer.get_json()["purchase_orders"]


def test_every_imports_page_and_form_is_finances_alone(service: Any) -> None:
    maria = signed_in(service, "maria")
    token = csrf(maria.get("/").get_data(as_text=True))
    for path in ("/imports", "/imports/preview", "/imports/mappings/new?kind=invoices"):
        assert maria.get(path).status_code == 403, path
    for path in ("/imports", "/imports/preview", "/imports/confirm", "/imports/cancel", "/imports/mappings"):
        assert maria.post(path, data={"csrf_token": token}).status_code == 403, path
    assert api_purchase_orders(service) == []


def test_an_upload_is_imported_once_and_only_by_the_session_that_previewed_it(service: Any) -> None:
    fiona, frank = signed_in(service, "fiona"), signed_in(service, "frank")
    rows = [
        ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Status"],
        ["S-1", "Solo", "900.00", "USD", "2026-03-01", "2026-03-31", "EMEA-0001", "Open"],
    ]
    assert upload(fiona, "purchase_orders", csv_bytes(rows)).status_code == 302
    token, upload_id = upload_token(fiona)
    other = csrf(frank.get("/imports").get_data(as_text=True))
    assert frank.post("/imports/confirm", data={"csrf_token": other, "upload": upload_id}).status_code == 302
    assert api_purchase_orders(service) == []  # another session's confirmation finds nothing
    first = fiona.post("/imports/confirm", data={"csrf_token": token, "upload": upload_id})
    assert first.status_code == 201 and "Stored 1 new and 0 changed purchase orders." in text(
        first.get_data(as_text=True)
    )
    again = fiona.post("/imports/confirm", data={"csrf_token": token, "upload": upload_id})
    assert again.status_code == 302 and [p["po_number"] for p in api_purchase_orders(service)] == ["S-1"]


def test_a_mapping_with_no_column_is_refused_at_that_field_and_nothing_is_saved(service: Any) -> None:
    fiona = signed_in(service, "fiona")
    token = csrf(fiona.get("/imports/mappings/new?kind=invoices").get_data(as_text=True))
    answer = fiona.post("/imports/mappings", data={"csrf_token": token, "kind": "invoices", "name": "Bills"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'href="#field-fields"' in page and 'id="field-fields"' in page
    assert "Map at least one field" in text(page) and 'value="Bills"' in page
    listing = service.client.get(
        "/api/v1/import-profiles", headers={"Authorization": f"Bearer {service.tokens['finance']}"}
    )
    assert listing.get_json()["profiles"] == []


def test_unmatched_actual_spend_is_shown_in_each_rows_own_currency(service: Any) -> None:
    rows = [["Line ID", "Amount", "Currency"], ["EMEA-0001", "1,000.00", "USD"], ["GONE-1", "2,345.50", "EUR"]]
    fiona = signed_in(service, "fiona")
    assert upload(fiona, "actuals", csv_bytes(rows)).status_code == 302
    token, upload_id = upload_token(fiona)
    page = fiona.post("/imports/confirm", data={"csrf_token": token, "upload": upload_id}).get_data(as_text=True)
    unmatched = re.search(r'<table id="unmatched".*?</table>', page, re.S).group(0)
    row = re.search(r'<tr data-row="3">.*?</tr>', unmatched, re.S).group(0)
    assert "<td>GONE-1</td>" in row and f">{money(cents('2,345.50'), 'EUR', code=True)}</td>" in row
    assert money(cents("1,000.00")) in text(re.search(r'<tr data-key="total">.*?</tr>', page, re.S).group(0))


def test_crm_results_are_previewed_and_imported_with_their_months_by_name(service: Any) -> None:
    months = SCHEMA.calendar.months
    rows = [["Line ID", "Month", "Leads", "Pipeline"], ["EMEA-0001", months[2].label, "40", "12,000.00"],
            ["EMEA-0002", months[3].label, "15", "3,000.00"], ["NOPE-1", months[3].label, "3", "100.00"]]  # fmt: skip
    fiona = signed_in(service, "fiona")
    assert upload(fiona, "results", csv_bytes(rows)).status_code == 302
    preview = fiona.get("/imports/preview").get_data(as_text=True)
    assert "3 rows will be imported" in text(preview) and "Plansheet's own columns" in text(preview)
    token, upload_id = upload_token(fiona)
    answer = fiona.post("/imports/confirm", data={"csrf_token": token, "upload": upload_id})
    page = text(answer.get_data(as_text=True))
    assert answer.status_code == 201
    assert f"Stored the results of 3 rows for {months[2].label}, {months[3].label}." in page
    unmatched = text(re.search(r'<table id="unmatched".*?</table>', answer.get_data(as_text=True), re.S).group(0))
    assert "NOPE-1" in unmatched and months[3].label in unmatched and "m04" not in unmatched


def test_a_file_refused_for_its_dates_is_read_again_day_first_without_choosing_it_again(service: Any) -> None:
    rows = [
        ["PO number", "Vendor", "Amount", "Currency", "Service start", "Service end", "Line ID", "Status"],
        ["D-1", "Dates Co", "800.00", "USD", "01/03/2026", "10/04/2026", "EMEA-0001", "Open"],
    ]
    fiona = signed_in(service, "fiona")
    assert upload(fiona, "purchase_orders", csv_bytes(rows)).status_code == 302
    refused = fiona.get("/imports/preview")
    assert refused.status_code == 422 and "either day first or month first" in text(refused.get_data(as_text=True))
    token, upload_id = upload_token(fiona)
    again = fiona.post("/imports/preview", data={"csrf_token": token, "upload": upload_id, "date_order": "dmy"})
    assert again.status_code == 302
    page = fiona.get("/imports/preview")
    assert page.status_code == 200 and "1 row will be imported" in text(page.get_data(as_text=True))
    answer = fiona.post("/imports/confirm", data={"csrf_token": token, "upload": upload_id})
    assert answer.status_code == 201
    stored = api_purchase_orders(service)
    assert [(p["po_number"], p["service_start"], p["service_end"]) for p in stored] == [
        ("D-1", "2026-03-01", "2026-04-10")
    ]
