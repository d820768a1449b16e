"""Finance's budget tasks in a real browser: allocations, months and baselines, reforecast cycles, transfers.

Fiona (finance) changes two allocation cells and only those change; a cell that is not an amount is
refused at the cell and nothing is saved; a form shown before someone else's save is refused. She
locks a month and reopens it, locks a baseline, opens and closes a reforecast cycle, and asks for a
transfer. Each page is saved as a screenshot at 1440 px and 390 px, and at 390 px none scrolls sideways.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.sync_service.live_server import as_json, call

SCHEMA = build_schema(load_config())
pytestmark = pytest.mark.chromium
MONTH_CODE = re.compile(r"\bm(0[1-9]|1[0-2])\b")


@pytest.fixture(scope="module", autouse=True)
def approved_plan(site) -> None:
    """EMEA Enterprise's plan, approved before any month is locked: the master a baseline locks."""
    base, tokens = site
    lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 6, seed=7)]
    status, sent = call(
        base, tokens["maria"], "POST", "/api/v1/submissions", {"team": "EMEA-ENTERPRISE", "lines": lines}
    )
    assert status == 201, sent
    status, body = call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{sent['id']}/approve", {})
    assert status == 200, body


def allocations(base: str, token: str) -> tuple[int, dict[tuple[str, str, str], int]]:
    status, body = call(base, token, "GET", "/api/v1/allocations")
    assert status == 200, body
    return body["revision"], {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in body["allocations"]}


def shown(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def on_a_phone(browser, base: str, path: str, shot: Path) -> str:
    """The page at 390 px: saved as `shot`, never wider than the screen; its text."""
    page = log_in(browser, base, "fiona", PHONE)
    page.goto(f"{base}{path}")
    page.screenshot(path=shot, full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    text = page.inner_text("main")
    page.context.close()
    return text


def test_finance_changes_two_allocation_cells_and_only_those_change(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    revision, before = allocations(base, tokens["fiona"])
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/allocations")
    page.screenshot(path=tmp_path / "allocations-1440.png", full_page=True)
    emea_q3 = page.locator('input[name="cell.emea.Q3.all"]')
    assert emea_q3.input_value() == shown(before["EMEA", "Q3", "*"])  # formatted for reading, as typed back
    assert page.get_attribute("#revision", "data-revision") == str(revision)

    # Not an amount, and a negative one: both refused at their cells and summarised; nothing saved.
    emea_q3.fill("a lot")
    page.fill('input[name="cell.apac.Q4.all"]', "-5")
    page.click("button:has-text('Save the changed cells')")
    summary = page.inner_text(".error-summary")
    assert "EMEA Q3 FY2027, all channels: must be an amount of zero or more" in summary
    assert "APAC Q4 FY2027, all channels: must be an amount of zero or more" in summary
    error = page.inner_text("td[data-cell='cell.emea.Q3.all'] .error-message")
    assert "must be an amount of zero or more" in error
    assert page.locator('input[name="cell.emea.Q3.all"]').input_value() == "a lot"  # kept as typed
    page.screenshot(path=tmp_path / "allocations-refused-1440.png", full_page=True)
    assert allocations(base, tokens["fiona"]) == (revision, before)

    # Two cells changed: EMEA Q3 for all channels and NA Q2 Events (a channel cell, in its region's fold).
    page.goto(f"{base}/allocations")
    stale = log_in(browser, base, "fiona", LAPTOP)
    stale.goto(f"{base}/allocations")  # a second tab, shown before the save
    emea_new = before["EMEA", "Q3", "*"] + 1_234_567
    page.fill('input[name="cell.emea.Q3.all"]', shown(emea_new))
    page.click("#channels-NA > summary")
    page.fill('input[name="cell.na.Q2.events"]', "25,000.50")
    page.fill("#field-comment", "Q3 events moved up")
    page.click("button:has-text('Save the changed cells')")
    saved = page.inner_text("#saved")
    assert f"Saved as allocation revision {revision + 1}" in saved and "2 cells changed" in saved
    rows = page.locator("#changed-cells tbody tr")
    assert rows.count() == 2
    assert {rows.nth(i).get_attribute("data-cell") for i in range(2)} == {"EMEA|Q3|*", "NA|Q2|Events"}
    emea_row = page.inner_text("#changed-cells tr[data-cell='EMEA|Q3|*']")
    assert shown(before["EMEA", "Q3", "*"]) in emea_row and shown(emea_new) in emea_row
    assert page.locator("td.changed").count() == 2
    page.screenshot(path=tmp_path / "allocations-saved-1440.png", full_page=True)
    after_revision, after = allocations(base, tokens["fiona"])
    assert after_revision == revision + 1
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {("EMEA", "Q3", "*"), ("NA", "Q2", "Events")}
    assert after["EMEA", "Q3", "*"] == emea_new and after["NA", "Q2", "Events"] == 2_500_050

    # The tab shown before that save is refused, saying why; the allocations stay as saved.
    stale.fill('input[name="cell.latam.Q1.all"]', "1")
    stale.click("button:has-text('Save the changed cells')")
    refusal = stale.inner_text(".error-summary")
    assert "Nothing was saved" in refusal and f"revision {revision + 1} is in force now" in refusal
    assert stale.get_attribute("#revision", "data-revision") == str(revision + 1)
    assert allocations(base, tokens["fiona"]) == (after_revision, after)
    stale.context.close()
    page.context.close()
    text = on_a_phone(browser, base, "/allocations", tmp_path / "allocations-390.png")
    assert not MONTH_CODE.search(text)


def test_finance_locks_a_month_then_reopens_it_and_locks_a_baseline(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/periods")
    row = page.locator("tr[data-month='m11']")
    assert row.locator("th").inner_text() == "Dec 2026" and "Q4 FY2027" in row.inner_text()
    assert row.get_attribute("data-locked") == "no"
    row.locator("button:has-text('Lock')").click()
    assert "Locked Dec 2026." in page.inner_text(".flash.ok")
    assert page.get_attribute("tr[data-month='m11']", "data-locked") == "yes"
    assert "Locked since" in page.inner_text("tr[data-month='m11']")
    _, periods = call(base, tokens["fiona"], "GET", "/api/v1/periods")
    assert next(p for p in periods["periods"] if p["month"] == "m11")["locked"]
    page.screenshot(path=tmp_path / "periods-locked-1440.png", full_page=True)
    page.locator("tr[data-month='m11'] button:has-text('Reopen')").click()
    assert "Reopened Dec 2026." in page.inner_text(".flash.ok")
    _, periods = call(base, tokens["fiona"], "GET", "/api/v1/periods")
    assert not next(p for p in periods["periods"] if p["month"] == "m11")["locked"]

    # A baseline without a name is refused at the field; with one it is locked and listed as the budget.
    page.click("button:has-text('Lock the baseline')")
    assert "Give the baseline a name" in page.inner_text("#lock-baseline .error-message")
    assert call(base, tokens["fiona"], "GET", "/api/v1/baselines")[1]["baselines"] == []
    page.fill("#field-name", "FY2027 budget")
    page.fill("#field-comment", "approved annual plans")
    page.click("button:has-text('Lock the baseline')")
    assert "Baseline “FY2027 budget” is locked" in page.inner_text(".flash.ok")
    listed = call(base, tokens["fiona"], "GET", "/api/v1/baselines")[1]["baselines"]
    assert [b["name"] for b in listed] == ["FY2027 budget"]
    row = page.inner_text(f"tr[data-baseline='{listed[0]['id']}']")
    assert "FY2027 budget" in row and "the budget" in row and "by fiona" in row
    page.screenshot(path=tmp_path / "periods-1440.png", full_page=True)
    assert not MONTH_CODE.search(page.inner_text("main"))
    page.context.close()
    on_a_phone(browser, base, "/periods", tmp_path / "periods-390.png")


def test_finance_opens_and_closes_a_reforecast_cycle(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/budget")
    form = page.locator("#open-cycle")
    form.locator("button[type=submit]").click()  # no name, no deadline
    assert "Give the cycle a name" in page.inner_text("#open-cycle")
    assert "Give the deadline as a date" in page.inner_text(".error-summary")
    assert call(base, tokens["fiona"], "GET", "/api/v1/cycles")[1]["cycles"] == []
    page.fill("#field-name", "Spring reforecast")
    page.select_option("#field-through", label="Mar 2026")
    deadline = dt.date.today() + dt.timedelta(days=30)
    page.fill("#field-deadline", deadline.isoformat())
    page.click("#open-cycle button[type=submit]")
    assert "Spring reforecast is open: the months through Mar 2026 are closed." in page.inner_text(".flash.ok")
    heading = page.inner_text("#cycle h2")
    assert heading.startswith("Spring reforecast: due ") and deadline.strftime("%b") in heading
    assert "through Mar 2026" in page.inner_text("#cycle")
    [cycle] = call(base, tokens["fiona"], "GET", "/api/v1/cycles")[1]["cycles"]
    assert cycle["status"] == "open" and cycle["closed_through"] == "m02"
    assert "Mar 2026" in page.inner_text(f"#cycles tr[data-cycle='{cycle['id']}']")
    page.screenshot(path=tmp_path / "budget-cycle-open-1440.png", full_page=True)
    assert not MONTH_CODE.search(page.inner_text("main"))
    page.click("#close-cycle button")
    assert "Spring reforecast is closed." in page.inner_text(".flash.ok")
    assert call(base, tokens["fiona"], "GET", "/api/v1/cycles")[1]["cycles"][0]["status"] == "closed"
    assert page.locator("#open-cycle").count() == 1
    page.screenshot(path=tmp_path / "budget-1440.png", full_page=True)
    page.context.close()
    text = on_a_phone(browser, base, "/budget", tmp_path / "budget-390.png")
    assert not MONTH_CODE.search(text)


def test_finance_asks_for_a_transfer_with_a_bad_amount_then_a_good_one(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    asked = call(base, tokens["fiona"], "GET", "/api/v1/transfers")[1]["transfers"]
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/transfers")
    page.select_option("#field-from_region", "LATAM")
    page.select_option("#field-from_quarter", label="Q3 FY2027")
    page.select_option("#field-to_region", "LATAM")
    page.select_option("#field-to_quarter", label="Q4 FY2027")
    page.fill("#field-amount", "twelve thousand")
    page.fill("#field-reason", "the trade fair moved to November")
    page.click("#ask-transfer button[type=submit]")
    assert "Amount must be an amount above zero" in page.inner_text("#ask-transfer .error-message")
    assert "Amount must be an amount above zero" in page.inner_text(".error-summary")
    assert page.input_value("#field-reason") == "the trade fair moved to November"  # what was typed is kept
    assert page.input_value("#field-from_quarter") == "Q3"
    page.screenshot(path=tmp_path / "transfers-refused-1440.png", full_page=True)
    assert call(base, tokens["fiona"], "GET", "/api/v1/transfers")[1]["transfers"] == asked

    page.fill("#field-amount", "12,000.50")
    page.click("#ask-transfer button[type=submit]")
    assert re.search(r"Transfer \d+ (made|asked for)", page.inner_text(".flash.ok"))
    newest = call(base, tokens["fiona"], "GET", "/api/v1/transfers")[1]["transfers"][0]
    assert len(call(base, tokens["fiona"], "GET", "/api/v1/transfers")[1]["transfers"]) == len(asked) + 1
    assert newest["amount"] == "12000.50" and newest["from"]["quarter"] == "Q3" and newest["to"]["quarter"] == "Q4"
    row = page.inner_text(f"#transfer-{newest['id']}")
    assert "12,000.50" in row and "LATAM Q3 FY2027, all channels" in row and "LATAM Q4 FY2027" in row
    page.screenshot(path=tmp_path / "transfers-1440.png", full_page=True)
    page.context.close()
    on_a_phone(browser, base, "/transfers", tmp_path / "transfers-390.png")
