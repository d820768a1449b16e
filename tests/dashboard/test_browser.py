"""The dashboard in a real browser: Playwright driving Debian's Chromium against the real service on 127.0.0.1.

A finance user logs in, opens a pending submission, reads its diff, approves it and sees the
master total and the chart change; a marketer cannot reach another region's page; on a phone,
finance builds a month's management pack and downloads it. Each page is saved as a screenshot
in the test's output folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import openpyxl
import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.dashboard.conftest import PASSWORD, PHONE, log_in
from tests.sync_service.live_server import as_json, call

SCHEMA = build_schema(load_config())
pytestmark = pytest.mark.chromium


def submit(base: str, token_: str, team: str, n: int, seed: int) -> int:
    lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], n, seed=seed)]
    status, body = call(base, token_, "POST", "/api/v1/submissions", {"team": team, "lines": lines})
    assert status == 201, body
    return body["id"]


def total_of(page) -> float:
    text = page.inner_text("#master-total")
    return float(re.search(r"([\d,]+\.\d\d)", text).group(1).replace(",", ""))


def test_finance_approves_a_plan_and_sees_the_master_change(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    sid = submit(base, tokens["maria"], "EMEA-ENTERPRISE", 12, seed=3)
    page = log_in(browser, base, "fiona")
    page.screenshot(path=tmp_path / "1-plan-status.png", full_page=True)
    row = page.locator("tr[data-team='EMEA-ENTERPRISE']")
    assert "Submitted" in row.inner_text()

    page.goto(f"{base}/master")
    before = total_of(page)
    bars_before = page.locator("rect.bar[data-series=Planned][data-region=EMEA]").get_attribute("data-value")
    page.screenshot(path=tmp_path / "2-master-before.png", full_page=True)

    page.goto(f"{base}/")
    row.locator("a", has_text=f"#{sid}").click()
    page.wait_for_url(f"{base}/submissions/{sid}")
    assert "12 lines added" in page.inner_text("#diff-summary")
    page.screenshot(path=tmp_path / "3-submission-diff.png", full_page=True)
    page.fill("textarea[name=comment]", "Looks right")
    page.click("button[value=approve]")
    page.wait_for_url(f"{base}/submissions/{sid}")
    assert "approved" in page.inner_text(".flash")
    page.screenshot(path=tmp_path / "4-approved.png", full_page=True)

    page.goto(f"{base}/master")
    after = total_of(page)
    bars_after = page.locator("rect.bar[data-series=Planned][data-region=EMEA]").get_attribute("data-value")
    page.screenshot(path=tmp_path / "5-master-after.png", full_page=True)
    _, master = call(base, tokens["fiona"], "GET", "/api/v1/rollup?by=region&period=year")
    expected = sum(float(r["amount"]) for r in master["rows"])
    assert before == 0 and after == pytest.approx(expected, abs=0.005) and after > 0
    assert float(bars_before) == 0 and float(bars_after) == pytest.approx(after, abs=0.01)

    page.goto(f"{base}/versions")
    assert "Approved a plan" in page.locator("#audit tr[data-action='submission.approve']").first.inner_text()
    page.screenshot(path=tmp_path / "6-versions-audit.png", full_page=True)
    page.goto(f"{base}/actuals")
    assert page.locator("tr[data-key=EMEA]").count() == 1 and page.locator("svg").count() == 2
    page.screenshot(path=tmp_path / "7-plan-vs-actual.png", full_page=True)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "1-plan-status.png",
        "2-master-before.png",
        "3-submission-diff.png",
        "4-approved.png",
        "5-master-after.png",
        "6-versions-audit.png",
        "7-plan-vs-actual.png",
    ]


def test_a_marketer_cannot_reach_another_regions_page(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    na = submit(base, tokens["sam"], "NA-ENTERPRISE", 5, seed=4)
    page = log_in(browser, base, "maria")
    assert "NA Enterprise" not in page.inner_text("#status")
    for path in ("/teams/NA-ENTERPRISE", f"/submissions/{na}"):
        response = page.goto(base + path)
        assert response.status == 404
    page.screenshot(path=tmp_path / "marketer-refused.png", full_page=True)
    assert page.locator("form.decide").count() == 0


def test_on_a_phone_finance_switches_to_next_year_and_reads_it_against_this_one(site, browser) -> None:
    base, _ = site
    following = SCHEMA.calendar.year + 1
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "fiona")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.click(f"text=FY{following}")  # the header's year switcher
    page.wait_for_url(f"**year={following}")
    page.click("header .menu > summary")  # on a phone the navigation folds into a menu
    page.click("text=Spend and results")
    page.click("text=Year over year")  # the nav keeps the year
    page.wait_for_url(f"**/year-over-year?year={following}")
    assert page.inner_text("h1") == f"FY{following} against FY{following - 1}"
    header = page.inner_text("#year-over-year thead")
    assert f"FY{following} plan" in header and f"FY{following - 1} estimate" in header
    # The page never scrolls sideways at 390 px; the wide table scrolls inside itself.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()


def test_on_a_phone_finance_builds_a_months_management_pack_and_downloads_it(site, browser, tmp_path: Path) -> None:
    base, _ = site
    page = log_in(browser, base, "fiona", PHONE)
    page.click("header .menu > summary")  # on a phone the navigation folds into a menu
    page.click("text=Spend and results")
    page.click("text=Management packs")
    page.wait_for_url(f"{base}/packs")
    page.select_option("#field-month", label="Feb 2026")
    page.click("#build-pack button[type=submit]")
    page.wait_for_url(f"{base}/packs")
    assert "The management pack of Feb 2026 is being built" in page.inner_text(".flash")
    deadline = time.monotonic() + 120
    while not page.locator("a.pack-workbook").count() and time.monotonic() < deadline:
        time.sleep(1)  # built in the background: the page lists it once it is kept
        page.reload()
    row = page.locator("#packs tbody tr").first
    assert "Feb 2026" in row.inner_text() and "Asked by fiona" in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # never sideways
    page.screenshot(path=tmp_path / "packs-390.png", full_page=True)
    with page.expect_download() as download:
        row.locator("a.pack-workbook").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "management-pack-feb-2026.xlsx"
    book = openpyxl.load_workbook(saved, read_only=True)
    assert book.sheetnames == ["Overview", "Budget", "Spend control", "Performance"]
    page.close()
