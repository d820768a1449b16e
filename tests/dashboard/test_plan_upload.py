"""A marketer submits a plan in the browser and finance approves it: the report by cell, the fix, the diff in money.

Maria's team has an approved plan (8,575.00 EUR in Dec 2026 on line EMEA-0001). She downloads the
team's template from the "Submit a plan" page, raises that month to 12,075.00 and mistypes a channel,
uploads it, reads the error at its cell, fixes it and sends it again; the new submission's page
shows the change in money and by month name. Fiona approves it in the browser and the change stays
on the submission's page and in the version history. Every page is saved at 1440 and 390 px.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sheet_templates import build_schema, load_config
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.dashboard.web_helpers import PASSWORD, csrf, signed_in
from tests.sync_service.live_server import as_json, call
from tests.sync_service.service_helpers import line

SCHEMA = build_schema(load_config())
TEAM = "EMEA-ENTERPRISE"
PLAN = [
    line("EMEA-0001", currency="EUR", m02="1000", m11="8575.00"),
    line("EMEA-0002", currency="EUR", m03="5000"),
    line("EMEA-0003", currency="EUR", channel="Paid Search", m11="2000"),
]
PLAN_JSON = [as_json(x) for x in PLAN]
DECEMBER = SCHEMA.calendar.months[10].first_day.strftime("%b %Y")  # m11 of the fiscal year, as people name it


def eur(units: float) -> str:
    """An amount as the pages write EUR where currencies mix, with a plain space for the non-breaking one."""
    return f"EUR {units:,.2f}" if units >= 0 else f"(EUR {-units:,.2f})"


def words(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").replace("\u202f", " ").split())


def fits_a_phone(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 390


def edit(path: Path, changes: dict[tuple[str, str], Any]) -> dict[str, str]:
    """Type values into the Plan sheet as a marketer would: {(line ID, column label): value}; the cells' addresses."""
    book = openpyxl.load_workbook(path)
    plan = book["Plan"]
    letter = {cell.value: cell.column_letter for cell in plan[1] if cell.value}
    row = {plan[f"{letter['Line ID']}{r}"].value: r for r in range(2, plan.max_row + 1)}
    where = {}
    for (line_id, label), value in changes.items():
        address = f"{letter[label]}{row[line_id]}"
        plan[address] = value
        where[line_id, label] = f"Plan!{address}"
    book.save(path)
    return where


@pytest.mark.chromium
def test_a_marketer_fixes_her_plan_by_cell_and_finance_approves_it_keeping_the_change_in_money(
    site, browser, tmp_path: Path
) -> None:
    base, tokens = site
    status, first = call(base, tokens["maria"], "POST", "/api/v1/submissions", {"team": TEAM, "lines": PLAN_JSON})
    assert status == 201, first
    assert call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{first['id']}/approve", {})[0] == 200

    # Maria finds "Submit a plan" on the status page and downloads her team's template from it.
    page = log_in(browser, base, "maria", LAPTOP)
    page.click("#submit-a-plan")
    page.wait_for_url(f"{base}/plans/upload")
    page.screenshot(path=tmp_path / "upload-1440.png", full_page=True)
    with page.expect_download() as download:
        page.click("text=Download your template")
    workbook = tmp_path / "plan-EMEA-ENTERPRISE.xlsx"
    download.value.save_as(workbook)

    # A raised month and a channel that is not one of the list: refused, with the cell to fix.
    cells = edit(workbook, {("EMEA-0001", DECEMBER): 12075, ("EMEA-0002", "Channel"): "Billboards"})
    page.set_input_files("#field-file", workbook)
    page.click("#upload-plan button[type=submit]")
    page.wait_for_load_state()
    assert page.url == f"{base}/plans/upload"
    summary = words(page.inner_text(".error-summary"))
    wrong = cells["EMEA-0002", "Channel"]
    assert "There is a problem" in summary and "The plan has 1 error; nothing was stored" in summary
    assert f'{wrong}: Channel "Billboards" is not in the list' in summary
    issue = page.locator(f"#issues tr.error[data-cell='{wrong}']")
    assert words(issue.inner_text()).startswith(f"{wrong} Error: Not one of the allowed values Channel")
    assert "cell." not in page.inner_text("#issues")  # the rule in words, never its id
    page.screenshot(path=tmp_path / "upload-refused-1440.png", full_page=True)
    listed = call(base, tokens["maria"], "GET", f"/api/v1/submissions?team={TEAM}")[1]["submissions"]
    assert [s["id"] for s in listed] == [first["id"]]  # nothing was stored

    # Fixed and sent again from the same page: the new submission's page shows the change in money by month name.
    edit(workbook, {("EMEA-0002", "Channel"): "Events"})
    page.set_input_files("#field-file", workbook)
    page.click("#upload-plan button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/submissions/\d+$"))
    sid = int(page.url.rsplit("/", 1)[1])
    assert f"Plan submitted as submission #{sid}" in page.inner_text(".flash")
    assert words(page.inner_text("#diff-summary")).endswith("0 lines added, 0 removed, 1 changed.")
    change = words(page.inner_text("#diff-lines tr[data-line='EMEA-0001']"))
    assert change == f"EMEA-0001 Campaign EMEA-0001 · Events {DECEMBER} {eur(8575)} {eur(12075)} {eur(3500)}"
    december = words(page.inner_text("#diff-months-EUR tr[data-month='m11']"))
    assert december == f"{DECEMBER} {10575:,.2f} {14075:,.2f} {3500:,.2f}"  # every EUR line's December
    assert "m11" not in page.inner_text("main")
    page.screenshot(path=tmp_path / "submission-1440.png", full_page=True)

    # Fiona approves it from her queue; the change in the reporting currency, then the diff, stay on the page.
    answer = call(base, tokens["fiona"], "GET", f"/api/v1/submissions/{sid}")[1]
    moved = float(answer["approval"]["change"])
    fiona = log_in(browser, base, "fiona", LAPTOP)
    fiona.goto(f"{base}/approvals")
    queued = words(fiona.inner_text(f"#waiting-for-you tr[data-submission='{sid}']"))
    assert f"{moved:,.2f}" in queued and "maria" in queued
    fiona.screenshot(path=tmp_path / "approvals-1440.png", full_page=True)
    fiona.click(f"#waiting-for-you a:text-is('#{sid}')")
    fiona.wait_for_url(f"{base}/submissions/{sid}")
    assert f"Changes the approved plan by USD {moved:,.2f}" in words(fiona.inner_text("#plan-change"))
    fiona.fill("textarea[name=comment]", "December event confirmed")
    fiona.click("button[value=approve]")
    fiona.wait_for_url(f"{base}/submissions/{sid}")
    assert f"Submission {sid} approved." in fiona.inner_text(".flash")
    replaced = f"Against the plan it replaced (submission #{first['id']})"
    assert words(fiona.inner_text("#diff-summary")).startswith(replaced)
    assert words(fiona.inner_text("#diff-lines tr[data-line='EMEA-0001']")) == change
    fiona.screenshot(path=tmp_path / "approved-1440.png", full_page=True)

    # The version history: the version's change of planned spend, its lines by month name, the audit log in words.
    fiona.goto(f"{base}/versions")
    version = int(fiona.locator("#versions tbody tr").first.get_attribute("data-version"))
    newest = words(fiona.inner_text(f"#versions tr[data-version='{version}']"))
    assert f"#{first['id']} → #{sid}" in newest and "fiona" in newest
    approved = fiona.locator("#audit tr[data-action='submission.approve']").first
    assert words(approved.inner_text()).split(" fiona ")[1].startswith(f"Approved a plan Plan #{sid}")
    assert "submission.approve" not in fiona.inner_text("#audit")
    fiona.screenshot(path=tmp_path / "versions-1440.png", full_page=True)
    fiona.click(f"#versions a:text-is('{version}')")
    fiona.wait_for_url(f"{base}/versions/{version}")
    assert words(fiona.inner_text(f"#team-{TEAM}-lines tr[data-line='EMEA-0001']")) == change
    fiona.screenshot(path=tmp_path / "version-1440.png", full_page=True)

    # On a phone: the same pages, none scrolling sideways (wide tables scroll inside themselves).
    phone = log_in(browser, base, "maria", PHONE)
    assert fits_a_phone(phone)
    phone.screenshot(path=tmp_path / "status-390.png", full_page=True)
    phone.goto(f"{base}/plans/upload")
    edit(workbook, {("EMEA-0002", "Channel"): "Billboards"})
    phone.set_input_files("#field-file", workbook)
    phone.click("#upload-plan button[type=submit]")
    phone.wait_for_load_state()
    assert phone.locator(f"#issues tr.error[data-cell='{wrong}']").count() == 1 and fits_a_phone(phone)
    phone.screenshot(path=tmp_path / "upload-refused-390.png", full_page=True)
    phone.goto(f"{base}/teams/{TEAM}")
    assert fits_a_phone(phone)
    phone.screenshot(path=tmp_path / "team-390.png", full_page=True)
    on_phone = log_in(browser, base, "fiona", PHONE)
    for path, shot in (
        (f"/submissions/{sid}", "submission"),
        ("/approvals", "approvals"),
        ("/versions", "versions"),
        (f"/versions/{version}", "version"),
    ):
        on_phone.goto(base + path)
        assert fits_a_phone(on_phone), path
        on_phone.screenshot(path=tmp_path / f"{shot}-390.png", full_page=True)
    assert words(on_phone.inner_text(f"#team-{TEAM}-lines tr[data-line='EMEA-0001']")) == change


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "maria": create_token(session, "maria", "marketer", [TEAM]),
            "fiona": create_token(session, "fiona", "finance"),
        }
        for name in tokens:
            set_password(session, name, PASSWORD)
    yield app, tokens
    store.dispose()


def upload(client: Any, data: dict[str, Any]) -> tuple[int, str]:
    page = client.get("/plans/upload").get_data(as_text=True)
    answer = client.post("/plans/upload", data={"csrf_token": csrf(page), **data}, content_type="multipart/form-data")
    return answer.status_code, answer.get_data(as_text=True)


def test_a_form_without_a_file_or_for_another_team_is_refused_at_its_field_and_stores_nothing(
    dashboard, tmp_path: Path
) -> None:
    app, tokens = dashboard
    maria = signed_in(app, "maria")
    page = maria.get("/plans/upload").get_data(as_text=True)
    assert f'<input type="hidden" name="team" value="{TEAM}">' in page  # her one team, nothing to choose
    status, page = upload(maria, {"team": TEAM})
    assert status == 422 and page.count("Choose your plan&#39;s xlsx file") == 2  # summary and field
    assert '<a href="#field-file">' in page and 'aria-invalid="true"' in page

    workbook = tmp_path / "na.xlsx"
    with maria.get("/download/template/EMEA-ENTERPRISE.xlsx") as template:
        workbook.write_bytes(template.data)
    status, page = upload(maria, {"team": "NA-ENTERPRISE", "file": (workbook.open("rb"), "na.xlsx")})
    assert status == 422 and "You may not submit plans for team NA-ENTERPRISE" in page
    assert '<a href="#field-team">' in page
    api = app.test_client().get("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    assert api.get_json()["submissions"] == []

    fiona = signed_in(app, "fiona")  # finance submits for any team: she chooses it
    options = re.findall(r'<option value="([^"]+)"', fiona.get("/plans/upload").get_data(as_text=True))
    assert options == sorted(options) and {TEAM, "NA-ENTERPRISE", "LATAM-SMB"} <= set(options)


def test_an_approved_plan_keeps_its_change_on_its_page_and_in_its_version(dashboard) -> None:
    app, tokens = dashboard
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {tokens['fiona']}"}
    first = api.post("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['maria']}"},
                     json={"team": TEAM, "lines": PLAN_JSON}).get_json()["id"]  # fmt: skip
    api.post(f"/api/v1/submissions/{first}/approve", headers=bearer, json={})
    changed = [dict(x) for x in PLAN_JSON[:2]]
    changed[0]["m11"] = 9000.5  # the third line removed, the first's December raised
    body = {"team": TEAM, "lines": changed, "based_on": {"submission": first}}
    second = api.post("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['maria']}"}, json=body)
    sid = second.get_json()["id"]
    fiona = signed_in(app, "fiona")
    before = fiona.get(f"/submissions/{sid}").get_data(as_text=True)
    assert api.post(f"/api/v1/submissions/{sid}/approve", headers=bearer, json={}).status_code == 200
    after = fiona.get(f"/submissions/{sid}").get_data(as_text=True)
    for page in (before, after):
        assert "0 lines added, 1 removed, 1 changed." in page
        december = re.search(r'<tr data-month="m11">(.*?)</tr>', page, re.S).group(1)
        assert re.findall(r">([^<]+)</t[dh]>", december) == [DECEMBER, "10,575.00", "9,000.50", "(1,574.50)"]
    assert "Against the approved plan (submission" in before and "Against the plan it replaced" in after
    removed = re.search(r'<tr class="removed" data-line="EMEA-0003"[^>]*>(.*?)</tr>', after, re.S).group(1)
    assert "EUR\xa02,000.00" in removed and "(EUR\xa02,000.00)" in removed
    version = fiona.get("/versions/2").get_data(as_text=True)
    assert re.search(r'<tr data-month="m11">(.*?)</tr>', version, re.S).group(1) == re.search(
        r'<tr data-month="m11">(.*?)</tr>', after, re.S
    ).group(1)
    versions = fiona.get("/versions").get_data(as_text=True)
    assert 'data-action="submission.approve"' in versions and ">Approved a plan<" in versions
