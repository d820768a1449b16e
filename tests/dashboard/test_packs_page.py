"""The Management packs page: a month's close builds its pack, the page lists it and hands out its files.

Through the test client: finance closes February on *Spend control*, the page lists the pack it built
and its workbook downloads; a marketer sees only their own teams' packs, cannot build one, and a
subscription this server cannot send is refused in words. (In Chromium, on a phone: tests/dashboard/
test_browser.py, on that module's service.)
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.dashboard.web_helpers import csrf, signed_in, spend_site, text
from tests.sync_service.service_helpers import Service, settled_jobs

SHEETS = ["Overview", "Budget", "Spend control", "Performance"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with spend_site(f"sqlite:///{tmp_path / 'packs.db'}", PACK_ON_CLOSE=True) as s:
        yield s


def test_closing_a_month_lists_its_pack_and_the_workbook_downloads(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    spend = fiona.get("/spend?month=m01").get_data(as_text=True)
    closed = fiona.post("/spend/close", data={"csrf_token": csrf(spend), "month": "m01"}, follow_redirects=True)
    assert "Its management pack is being built (Management packs)." in text(closed.get_data(as_text=True))
    assert set(settled_jobs(service.store).values()) == {"succeeded"}
    page = fiona.get("/packs").get_data(as_text=True)
    words = text(page)
    assert "Packs of FY2027" in words and "Feb 2026 " in words and "The month closed" in words
    assert "the whole organisation" in words and "Nobody receives the pack by email yet." in words
    link = '<a href="/packs/1/workbook" class="pack-workbook">'
    assert link in page
    workbook = fiona.get("/packs/1/workbook")
    assert workbook.status_code == 200 and workbook.mimetype == XLSX
    assert openpyxl.load_workbook(io.BytesIO(workbook.data), read_only=True).sheetnames == SHEETS

    maria = signed_in(service, "maria")
    mine = maria.get("/packs").get_data(as_text=True)
    assert "No pack yet" in text(mine) and link not in mine  # the organisation's pack is finance's
    assert maria.get("/packs/1/workbook").status_code == 404
    assert "Build the pack" not in mine
    assert maria.post("/packs", data={"csrf_token": csrf(mine), "month": "m01"}).status_code == 403
    refused = maria.post(
        "/packs/subscription", data={"csrf_token": csrf(mine), "subscribed": "yes"}, follow_redirects=True
    )
    said = text(refused.get_data(as_text=True))
    assert "subscribed: this server sends no email (PLANSHEET_SMTP_HOST is not set)" in said
    assert "The pack is not emailed to you." in said
