"""The monthly management pack: built when a month closes, its figures the API's to the cent, its PDF, its email.

One service in process for the module, on demo-like data made by the demo's own export generators:
four regions' approved plans, a budget baseline, the finance system's actual spend by month, the
CRM's results, POs and invoices, February locked. Finance and an EMEA marketer subscribe; closing
February's accrual builds the pack in the background and emails it over a real SMTP server (aiosmtpd
with STARTTLS). Every figure of the workbook, read as written (openpyxl, `data_only=True`: the cached
values a phone's preview reads), is compared with the API's answer.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from sheet_templates.money import to_cents
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.demo_service import actuals_csv, crm_export, invoices_csv, purchase_orders_csv
from sync_service.documents import packs, pdf
from sync_service.platform import jobs
from sync_service.platform.context import STORE
from sync_service.platform.errors import ServiceError
from sync_service.platform.storage import User
from sync_service.spend import accruals
from tests.databases import upgrade
from tests.sync_service.http_helpers import auth, problem
from tests.sync_service.live_server import as_json
from tests.sync_service.service_helpers import SCHEMA, settled_jobs
from tests.sync_service.test_notifications import Inbox, mail_server

pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)

MONTH = SCHEMA.calendar.months[0]  # February 2026: the month the demo closes
TEAMS = {"NA": "NA-ENTERPRISE", "EMEA": "EMEA-ENTERPRISE", "APAC": "APAC-SMB", "LATAM": "LATAM-SMB"}
SHEETS = ["Overview", "Budget", "Spend control", "Performance"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class World:
    app: Any
    client: Any
    tokens: dict[str, str]
    inbox: Inbox
    closed: dict[str, Any]  # the close's answer

    def get(self, path: str, who: str = "finance") -> Any:
        response = self.client.get(path, headers=auth(self.tokens[who]))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json() if response.mimetype == "application/json" else response.data

    def send(self, method: str, path: str, who: str = "finance", headers: Any = None, **kw: Any) -> Any:
        sent = {**auth(self.tokens[who]), **(headers or {})}
        return self.client.open(path, method=method, headers=sent, **kw)

    def upload(self, path: str, data: bytes) -> Any:
        response = self.client.post(
            path, headers=auth(self.tokens["finance"]), data=data, content_type="application/octet-stream"
        )
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return response.get_json()


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inbox, int, Path]]:
    with mail_server(tmp_path_factory.mktemp("mail")) as server:
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mail: tuple[Inbox, int, Path]) -> Iterator[World]:
    inbox, port, cert = mail
    url = f"sqlite:///{tmp_path_factory.mktemp('pack') / 'plansheet.db'}"
    upgrade(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_CA_FILE": str(cert),
            "MAIL_FROM": "plansheet@acme.example",
            "JOB_BACKOFF": 0.2,
            "JOB_ATTEMPTS": 2,
        }
    )
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "finance": create_token(session, "fiona@acme.example", "finance"),
            "finance2": create_token(session, "frank@acme.example", "finance"),
            "emea": create_token(session, "maria@acme.example", "marketer", [TEAMS["EMEA"]]),
            "na": create_token(session, "sam", "marketer", [TEAMS["NA"]]),  # a name that is no address
            "admin": create_token(session, "ada", "admin"),
        }
    w = World(app, app.test_client(), tokens, inbox, {})
    for n, (region, team) in enumerate(TEAMS.items()):
        lines = sample_lines(SCHEMA, region, 8, seed=n, id_prefix=region[:2], results_at_plan_rates=True)
        body = {"team": team, "lines": [as_json(x) for x in lines]}
        submitted = w.send("POST", "/api/v1/submissions", "finance2", json=body)
        assert submitted.status_code == 201, submitted.get_data(as_text=True)
        approved = w.send("POST", f"/api/v1/submissions/{submitted.get_json()['id']}/approve", json={"comment": "ok"})
        assert approved.status_code == 200, approved.get_data(as_text=True)
    assert w.send("POST", "/api/v1/baselines", json={"name": "FY2027 budget"}).status_code == 201
    master = w.get("/api/v1/master")
    w.upload("/api/v1/actuals?filename=actuals.csv", actuals_csv(master, SCHEMA, 1))
    w.upload("/api/v1/outcomes?preset=salesforce&source=salesforce&filename=crm.csv", crm_export(master, SCHEMA, 1))
    assert w.send("POST", "/api/v1/periods/lock", json={"months": ["m01"]}).status_code == 200
    w.upload("/api/v1/purchase-orders?filename=po.csv", purchase_orders_csv(master, SCHEMA))
    orders = w.get("/api/v1/purchase-orders")["purchase_orders"]
    w.upload("/api/v1/invoices?filename=invoices.csv", invoices_csv(orders, SCHEMA))
    for who in ("finance", "emea"):
        answer = w.send("PUT", "/api/v1/me/pack-subscription", who, json={"subscribed": True})
        assert answer.status_code == 200, answer.get_data(as_text=True)
    closed = w.send("POST", f"/api/v1/accruals/{MONTH.name}/close")
    assert closed.status_code == 200, closed.get_data(as_text=True)
    w.closed = closed.get_json()
    states = settled_jobs(store)
    assert set(states.values()) == {"succeeded"}, states
    try:
        yield w
    finally:
        settled_jobs(store)
        store.dispose()


# --- reading the workbook as written --------------------------------------------------------------------------


def workbook(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=True)


def table(sheet: Any, title: str) -> tuple[list[str], dict[str, list[Any]], list[Any] | None]:
    """(header, {first cell: row}, totals row) of the table titled `title` on `sheet`."""
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    start = next(k for k, r in enumerate(rows) if r and r[0] == title)
    header = [h for h in rows[start + 1] if h is not None]
    body: dict[str, list[Any]] = {}
    total = None
    for r in rows[start + 2 :]:
        if r[0] is None or r[0] == "No figures.":
            break
        if r[0] == "Total":
            total = r[: len(header)]
            break
        body[str(r[0])] = r[: len(header)]
    return header, body, total


def cents(value: Any) -> int | None:
    """A money cell as cents (its value is cents / 100, so this is exact)."""
    return None if value is None else round(value * 100)


def column(header: list[str], name: str) -> int:
    return next(k for k, h in enumerate(header) if h.startswith(name))


def the_pack(w: World) -> dict[str, Any]:
    """The organisation's pack of the month, built when it closed."""
    packs = w.get("/api/v1/packs")["packs"]
    return next(p for p in packs if p["month"] == MONTH.name and p["reason"] == "close" and p["teams"] is None)


# --- the tests ------------------------------------------------------------------------------------------------


def test_closing_a_month_builds_its_pack_as_a_workbook_and_pdf(world: World) -> None:
    job = world.closed["pack"]
    assert job["status"] == "queued" and job["href"] == f"/api/v1/jobs/{job['job']}"
    built = world.get(job["href"])
    assert built["status"] == "succeeded" and built["result"]["month"] == MONTH.name, built
    pack = the_pack(world)
    assert pack["job"] == job["job"] and pack["label"] == "Feb 2026" and pack["covers"] == "the whole organisation"
    assert pack["built_for"] == "fiona@acme.example" and pack["teams"] is None
    response = world.send("GET", pack["workbook"])
    assert response.status_code == 200 and response.mimetype == XLSX
    assert "management-pack-feb-2026.xlsx" in response.headers["Content-Disposition"]
    book = workbook(response.data)
    assert book.sheetnames == SHEETS
    overview = book["Overview"]
    assert overview["A1"].value == "Management pack: Feb 2026"
    text = " ".join(str(c) for row in overview.iter_rows(values_only=True) for c in row if c is not None)
    assert "The accrual of Feb 2026 was closed on" in text and "m01" not in text
    for sheet in book.worksheets:  # every sheet prints landscape, one page wide, with the footer saying what it is
        setup = sheet.page_setup  # fitToWidth 1 is SpreadsheetML's default: xlsxwriter leaves it out
        assert setup.orientation == "landscape" and sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert setup.fitToWidth in (None, 1) and setup.fitToHeight == 0, sheet.title
        footer = sheet.oddFooter.center.text
        version = pack["about"]["master_version"]
        assert footer == f"Acme Corporation, FY2027, Feb 2026, master version {version}", sheet.title
        assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row), sheet.title  # values


def check_budget_row(
    header: list[str], row: list[Any], v: dict[str, Any], b: dict[str, Any], *, allocation: bool
) -> None:
    """A Budget row against the variance answer `v` and the budget answer `b` of its group."""
    got = {h: row[k] for k, h in enumerate(header)}
    where = row[0]
    if allocation:
        assert cents(got["Allocation"]) == to_cents(v["allocation"]), where
    assert cents(got["Budget"]) == b["cents"]["budget"], where
    assert cents(got["Plan"]) == to_cents(v["planned"]) == b["cents"]["plan"], where
    assert cents(got["Latest estimate"]) == b["cents"]["estimate"], where
    assert cents(got["Estimate less budget"]) == to_cents(b["estimate_vs_budget"]), where
    assert cents(got["Plan to the end of Feb 2026"]) == to_cents(v["planned_to_date"]), where
    assert cents(got["Actual to date"]) == to_cents(v["actual"]), where
    assert cents(got["Variance (plan less actual)"]) == to_cents(v["variance"]), where
    assert got["Variance %"] == v["variance_pct"], where


def test_the_budget_sheet_equals_the_api_to_the_cent(world: World) -> None:
    book = workbook(world.send("GET", the_pack(world)["workbook"]).data)
    as_of = (MONTH.last_day + dt.timedelta(days=1)).isoformat()
    for by in ("region", "channel"):
        header, rows, total = table(book["Budget"], f"By {by}")
        variance = {r[by]: r for r in world.get(f"/api/v1/variance?by={by}&as_of={as_of}")["rows"]}
        budget = {r[by]: r for r in world.get(f"/api/v1/budget?by={by}&period=year")["rows"]}
        assert set(rows) == set(variance) == set(budget) and len(rows) > 1
        for key, row in rows.items():
            check_budget_row(header, row, variance[key], budget[key], allocation=by == "region")
        grand_v = world.get(f"/api/v1/variance?by=,&as_of={as_of}")["rows"][0]
        grand_b = world.get("/api/v1/budget?by=,&period=year")["rows"][0]
        check_budget_row(header, total, grand_v, grand_b, allocation=False)
    assert book["Budget"]._charts, "the Budget sheet has its chart"


def test_the_spend_control_sheet_equals_the_api_to_the_cent(world: World) -> None:
    book = workbook(world.send("GET", the_pack(world)["workbook"]).data)
    sheet = book["Spend control"]
    header, rows, total = table(sheet, "By region")
    spend = world.get(f"/api/v1/spend?by=region&month={MONTH.name}")
    keys = ("plan", "committed", "invoiced", "accrued", "remaining")
    assert {r["region"] for r in spend["rows"]} == set(rows)
    for answer in spend["rows"]:
        row = rows[answer["region"]]
        assert [cents(v) for v in row[1:]] == [to_cents(answer[k]) for k in keys], answer["region"]
    assert [cents(v) for v in total[1:]] == [to_cents(spend["totals"][k]) for k in keys]
    assert header[column(header, "Accrued")] == "Accrued (end of Feb 2026)"
    accrual = world.get(f"/api/v1/accruals/{MONTH.name}")
    assert accrual["closed"] is True and accrual["entries"]
    _, teams, total = table(sheet, "The accrual of Feb 2026 by team")
    expected = {r["team"]: to_cents(r["accrued"]) for r in accrual["by_team"]}
    if to_cents(accrual["not_on_a_line"]):
        expected["Not on a plan line"] = to_cents(accrual["not_on_a_line"])
    assert {k: cents(r[1]) for k, r in teams.items()} == expected
    assert cents(total[1]) == to_cents(accrual["total"]) > 0


def test_the_performance_sheet_equals_the_api(world: World) -> None:
    book = workbook(world.send("GET", the_pack(world)["workbook"]).data)
    measures = {m["name"]: m for m in world.get("/api/v1/performance?by=region&period=year")["measures"]}
    headers = {  # the sheet's headers and the measure and figure of the API each shows
        "Actual spend": ("spend", "actual"),
        "Leads": ("leads", "actual"),
        "Expected leads": ("leads", "expected"),
        "Target leads": ("leads", "target"),
        "Pipeline": ("pipeline", "actual"),
        "Expected pipeline": ("pipeline", "expected"),
        "Target pipeline": ("pipeline", "target"),
        "Revenue": ("revenue", "actual"),
        "Target revenue": ("revenue", "target"),
        "Cost per lead": ("cost_per_lead", "actual"),
        "Expected cost per lead": ("cost_per_lead", "expected"),
        "Target cost per lead": ("cost_per_lead", "target"),
        "Pipeline per unit of spend": ("pipeline_roi", "actual"),
    }

    def expected(answer: dict[str, Any], name: str) -> Any:
        measure, which = headers[name]
        shown = answer["measures"][measure]
        return shown["cents"][which] if measures[measure]["unit"].startswith("money") else shown[which]

    def got(value: Any, name: str) -> Any:
        return cents(value) if measures[headers[name][0]]["unit"].startswith("money") else value

    grand = world.get("/api/v1/performance?by=,&period=year")["rows"][0]
    for by in ("region", "channel"):
        header, rows, total = table(book["Performance"], f"By {by}")
        answers = {r[by]: r for r in world.get(f"/api/v1/performance?by={by}&period=year")["rows"]}
        assert set(rows) == set(answers)
        for key, row in [*rows.items(), ("Total", total)]:
            answer = answers.get(key, grand)
            for k, name in enumerate(header[1:], start=1):
                assert got(row[k], name) == expected(answer, name), (by, key, name)
        assert any(r[column(header, "Leads")] for r in rows.values()), "results were imported"
    region_header, regions, _ = table(book["Performance"], "By region")
    assert any(r[column(region_header, "Target leads")] for r in regions.values()), "the targets are shown"
    assert len(book["Performance"]._charts) == 2


def test_the_overview_key_figures_are_the_sheets_totals(world: World) -> None:
    book = workbook(world.send("GET", the_pack(world)["workbook"]).data)
    overview = {r[0]: r[1] for r in book["Overview"].iter_rows(values_only=True) if r[0] and len(r) > 1}
    as_of = (MONTH.last_day + dt.timedelta(days=1)).isoformat()
    variance = world.get(f"/api/v1/variance?by=,&as_of={as_of}")["rows"][0]
    budget = world.get("/api/v1/budget?by=,&period=year")["rows"][0]
    spend = world.get(f"/api/v1/spend?by=region&month={MONTH.name}")["totals"]
    accrual = world.get(f"/api/v1/accruals/{MONTH.name}")
    assert cents(overview["Budget for the year"]) == budget["cents"]["budget"]
    assert cents(overview["Latest estimate for the year"]) == budget["cents"]["estimate"]
    assert cents(overview["Actual spend to date"]) == to_cents(variance["actual"])
    assert cents(overview["Variance to date (plan less actual)"]) == to_cents(variance["variance"])
    assert cents(overview["Committed (open purchase orders) at the end of Feb 2026"]) == to_cents(spend["committed"])
    assert cents(overview["Accrued at the end of Feb 2026"]) == to_cents(accrual["total"])
    assert "Budget" in overview and "Performance" in overview  # the contents, linked to each sheet


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def pdf_titles(data: bytes) -> list[str]:
    """The PDF's titles in UTF-16: the document's, and its outline's (LibreOffice writes one entry per sheet)."""
    return [bytes.fromhex(h.decode()).decode("utf-16") for h in re.findall(rb"/Title<([0-9A-F]+)>", data)]


@pytest.mark.libreoffice
def test_the_pack_has_a_pdf_of_its_sheets(world: World) -> None:
    pack = the_pack(world)
    assert pack["pdf"] == f"/api/v1/packs/{pack['id']}/pdf" and pack["pdf_note"] is None
    response = world.send("GET", pack["pdf"])
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert "management-pack-feb-2026.pdf" in response.headers["Content-Disposition"]
    titles = pdf_titles(response.data)
    assert [t for t in titles if t in SHEETS] == SHEETS and "Management pack: Feb 2026" in titles
    assert len(SHEETS) <= pdf_pages(response.data) <= 12  # a few pages, one wide per sheet


def packs_to(inbox: Inbox, address: str) -> list[Any]:
    """The management packs `address` received (the plans' notices aside)."""
    return [m for m in inbox.to(address) if "Management pack" in m["Subject"]]


def test_subscribers_receive_the_pack_of_their_own_view_over_smtp(world: World) -> None:
    fiona = packs_to(world.inbox, "fiona@acme.example")
    assert len(fiona) == 1
    message = fiona[0]
    assert message["Subject"] == "[Plansheet] Management pack: Feb 2026 (Acme Corporation)"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "The management pack for Feb 2026 is attached (its accrual was closed)" in body
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(files) == {"management-pack-feb-2026.xlsx", "management-pack-feb-2026.pdf"}
    assert files["management-pack-feb-2026.xlsx"].get_content() == world.send("GET", the_pack(world)["workbook"]).data
    assert files["management-pack-feb-2026.pdf"].get_content().startswith(b"%PDF-")
    assert all(tls for _, _, tls in world.inbox.messages)  # STARTTLS, the certificate verified by the service
    # The EMEA marketer receives the pack of her own team, never the organisation's.
    maria = packs_to(world.inbox, "maria@acme.example")
    assert len(maria) == 1
    files = {part.get_filename(): part for part in maria[0].iter_attachments()}
    name = "management-pack-feb-2026-emea-enterprise"
    assert set(files) == {f"{name}.xlsx", f"{name}.pdf"}
    book = openpyxl.load_workbook(io.BytesIO(files[f"{name}.xlsx"].get_content()), data_only=True)
    _, regions, _ = table(book["Budget"], "By region")
    assert set(regions) == {"EMEA"}
    as_of = (MONTH.last_day + dt.timedelta(days=1)).isoformat()
    mine = world.get(f"/api/v1/variance?by=region&as_of={as_of}", "emea")["rows"][0]
    assert cents(regions["EMEA"][column(list(table(book["Budget"], "By region")[0]), "Actual")]) == to_cents(
        mine["actual"]
    )
    assert not packs_to(world.inbox, "sam") and not packs_to(world.inbox, "frank@acme.example")  # not subscribed


def test_a_marketer_sees_only_the_packs_of_their_teams(world: World) -> None:
    org = the_pack(world)
    mine = world.get("/api/v1/packs", "emea")
    assert mine["subscribed"] is True
    assert [p["covers"] for p in mine["packs"]] == ["EMEA-ENTERPRISE"]
    hidden = problem(world.send("GET", org["workbook"], "emea"), 404)
    assert hidden["detail"] == f"there is no management pack {org['id']}"
    assert world.get("/api/v1/packs", "na")["packs"] == []  # sam did not subscribe: no pack was built for him
    assert problem(world.send("GET", "/api/v1/packs", "admin"), 403)
    finance = world.get("/api/v1/packs")["packs"]
    assert {p["covers"] for p in finance} >= {"the whole organisation", "EMEA-ENTERPRISE"}


def test_only_finance_builds_a_pack_on_demand(world: World) -> None:
    refused = problem(world.send("POST", "/api/v1/packs", "emea", json={"month": "m01"}), 403)
    assert refused["detail"] == "only finance builds the management pack"
    bad = problem(world.send("POST", "/api/v1/packs", json={"month": "m13"}), 400)
    assert "body.month" in bad["detail"]


def test_a_marketer_subscribes_and_each_refusal_names_the_field_and_the_fix(world: World) -> None:
    refused = problem(world.send("PUT", "/api/v1/me/pack-subscription", "na", json={"subscribed": True}), 409)
    assert refused["detail"].startswith("email: the pack needs an address to go to")
    assert "PUT /api/v1/me/notifications" in refused["detail"]
    assert refused["issues"] == [
        {"at": "email", "rule": "subscription.address", "message": "your name is not an address and none is set"}
    ]
    assert world.get("/api/v1/me/pack-subscription", "na") == {"subscribed": False, "address": None}
    address = world.send("PUT", "/api/v1/me/notifications", "na", json={"email": "sam@na.example"})
    assert address.status_code == 200
    on = world.send("PUT", "/api/v1/me/pack-subscription", "na", json={"subscribed": True})
    assert on.status_code == 200 and on.get_json() == {"subscribed": True, "address": "sam@na.example"}
    off = world.send("PUT", "/api/v1/me/pack-subscription", "na", json={"subscribed": False})
    assert off.get_json() == {"subscribed": False, "address": "sam@na.example"}
    admin = problem(world.send("PUT", "/api/v1/me/pack-subscription", "admin", json={"subscribed": True}), 403)
    assert "admins" in admin["detail"]


def test_without_libreoffice_the_workbook_is_made_and_says_why_there_is_no_pdf(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no soffice on it
    response = world.send("POST", "/api/v1/packs", json={"month": "m01"}, headers={"Prefer": "wait=30"})
    assert response.status_code == 200, response.get_data(as_text=True)
    job = response.get_json()
    assert job["status"] == "succeeded" and job["result"]["pdf"] is False, job
    note = job["result"]["pdf_note"]
    assert note.startswith("no PDF was made: LibreOffice (soffice) is not installed on the server; install")
    assert "libreoffice-calc-nogui" in note
    pack = world.get(f"/api/v1/packs/{job['result']['packs'][0]}")
    assert pack["reason"] == "request" and pack["pdf"] is None and pack["pdf_note"] == note
    missing = problem(world.send("GET", f"/api/v1/packs/{pack['id']}/pdf"), 404)
    assert missing["detail"] == f"management pack {pack['id']} has no PDF: {note}"
    book = workbook(world.get(pack["workbook"]))
    text = [r[0] for r in book["Overview"].iter_rows(values_only=True) if r[0]]
    assert any(str(t).startswith("No PDF was made: LibreOffice (soffice) is not installed") for t in text)
    sent = sum(len(packs_to(world.inbox, a)) for a in ("fiona@acme.example", "maria@acme.example"))
    assert sent == 2  # built on demand without `email`: nobody was sent it


# --- LibreOffice failing, and months closed faster than packs are built -----------------------------------------


def fake_office(folder: Path, body: str) -> Path:
    """A program standing in for soffice: a shell script doing `body`."""
    program = folder / "soffice"
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)
    return program


def test_a_hung_libreoffice_is_stopped_with_its_helpers_and_a_failed_one_said_so(tmp_path: Path) -> None:
    book = tmp_path / "pack.xlsx"
    book.write_bytes(b"PK")
    started = tmp_path / "helper.pid"
    hung = fake_office(tmp_path, f"sleep 60 & echo $! > {started}\nwait")
    before = time.monotonic()
    with pytest.raises(ServiceError) as stopped:
        pdf.to_pdf(book, setting=str(hung), timeout=1)
    assert time.monotonic() - before < 30
    assert stopped.value.detail == (
        "no PDF was made: LibreOffice did not finish within 1 s and was stopped; the workbook itself is complete"
    )
    helper = int(started.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{helper}").exists() and "Z" not in _state(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{helper}").exists() or "Z" in _state(helper), "its helper process was killed too"
    failing = fake_office(tmp_path, "echo 'Error: source file could not be loaded' >&2\nexit 1")
    with pytest.raises(ServiceError) as failed:
        pdf.to_pdf(book, setting=str(failing))
    assert failed.value.detail == (
        "no PDF was made: LibreOffice could not convert the workbook (exit 1: Error: source file could not be "
        "loaded); the workbook itself is complete"
    )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


def test_a_close_finding_a_later_month_closed_leaves_the_pack_to_it(world: World) -> None:
    """Months closed one after another: the earlier close's job builds nothing, the later month's pack is sent."""
    store = world.app.extensions[STORE]
    with store.reading() as session:
        fiona = session.scalars(select(User).where(User.name == "fiona@acme.example")).one()
        fiona.teams  # noqa: B018 - loaded for the close's scoping
    for month in ("m02", "m03"):
        accruals.close(store, SCHEMA, fiona, month)  # no follow-up: nothing queued
    with store.transaction() as session:
        job = jobs.create(session, packs.PACK_JOB, {"month": "m02", "reason": "close", "email": True}, fiona).id
    jobs.run(world.app, job)
    answer = world.get(f"/api/v1/jobs/{job}")
    assert answer["status"] == "succeeded", answer
    assert answer["result"] == {"month": "m02", "skipped": "Apr 2026 was closed before this pack was built; "
                                "its pack is the one sent"}  # fmt: skip
    assert not [p for p in world.get("/api/v1/packs")["packs"] if p["month"] == "m02"]
