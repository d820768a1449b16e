"""The spend-control page through the test client: figures, the POs to look at, scoping, the close and journal.

Every expected figure is worked out by tests.sync_service.test_spend from the rows the test sent,
never read back from the service.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from sync_service.access.passwords import set_password
from tests.dashboard.web_helpers import PASSWORD, csrf, login
from tests.sync_service.service_helpers import Service, approved_plan, make_service
from tests.sync_service.spend_helpers import MONTHS, NAMES, PLAN, POS, TEAM, accrual, imported, line_figures, money


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = make_service(f"sqlite:///{tmp_path / 'spend.db'}")
    with s.store.transaction() as session:
        for name in ("maria", "sam", "fiona"):
            set_password(session, name, PASSWORD)
    approved_plan(s, PLAN)
    imported(s)
    yield s
    s.store.dispose()


def signed_in(s: Service, name: str):
    client = s.app.test_client()
    assert login(client, name).status_code == 302
    return client


def shown(cents: int) -> str:
    """An amount as a person reads it on the page: thousands separated, two decimals."""
    return f"{Decimal(cents) / 100:,.2f}"


def row_cells(page: str, key: str) -> list[str]:
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row is not None, key
    return re.findall(r'<td class="num[^"]*" data-cents="-?\d+">([^<]*)</td>', row.group(1))


def table(page: str, id_: str) -> str:
    return re.search(rf'<table id="{id_}">(.*?)</table>', page, re.S).group(1)


MEASURES = ("plan", "committed", "invoiced", "accrued", "remaining")


@pytest.mark.parametrize("month", [0, 1, 3])
def test_finance_sees_plan_committed_invoiced_accrued_and_remaining(service: Service, month: int) -> None:
    fiona = signed_in(service, "fiona")
    for by in ("team", "line", "region"):
        answer = fiona.get(f"/spend?by={by}&month={NAMES[month]}")
        assert answer.status_code == 200
        page = answer.get_data(as_text=True)
        expected: dict[str, dict[str, int]] = {}
        for x in PLAN:
            key = {"line": f"{TEAM}|{x['line_id']}", "team": TEAM, "region": "EMEA"}[by]
            for name, value in line_figures(x["line_id"], month).items():
                expected.setdefault(key, dict.fromkeys(MEASURES, 0))[name] += value
        for key, figures in expected.items():
            assert row_cells(page, key) == [shown(figures[n]) for n in MEASURES], (by, key)
        totals = [shown(sum(f[n] for f in expected.values())) for n in MEASURES]
        assert row_cells(page, "total") == totals
        assert f'<option value="{NAMES[month]}" selected>{MONTHS[month].label}</option>' in page
        assert all(f">{m.label}</option>" in page for m in MONTHS)
    assert re.findall(r'data-po="([^"]+)"', table(page, "unmatched-purchase-orders")) == ["PO-1003", "PO-1004"]
    assert re.findall(r'data-po="([^"]+)"', table(page, "over-po")) == ["PO-1002"]
    assert re.findall(r'data-invoice="([^"]+)"', table(page, "unmatched-invoices")) == ["INV-4"]
    entries = re.findall(r'data-po="([^"]+)"', table(page, "accrual-entries"))
    assert entries == [p[0] for p in POS if accrual(p, month)]
    assert 'href="/spend?by=team&amp;month=' in page and "<script>" not in page
    assert fiona.get("/spend?month=m13").status_code == 404
    assert fiona.get("/spend?by=vendor").status_code == 400


def test_a_marketer_of_another_team_sees_none_of_emeas_pos_and_may_not_close(service: Service) -> None:
    fiona, maria, sam = (signed_in(service, n) for n in ("fiona", "maria", "sam"))
    everything = fiona.get("/spend?month=m02").get_data(as_text=True)
    numbers = [p[0] for p in POS]
    assert {n for n in numbers if n in everything} >= {"PO-1001", "PO-1002", "PO-1003", "PO-1006"}
    page = sam.get("/spend?month=m02").get_data(as_text=True)
    assert [n for n in numbers if n in page] == []
    assert f'data-key="{TEAM}"' not in page and "INV-4" not in page
    assert "Close the accrual" not in page and "journal.csv" not in page
    assert sam.post("/spend/close", data={"csrf_token": csrf(page), "month": "m01"}).status_code == 403
    assert sam.get("/spend/journal.csv?month=m01").status_code == 403
    mine = maria.get("/spend?month=m02").get_data(as_text=True)
    assert f'data-key="{TEAM}"' in mine and "PO-1001" in mine and "PO-1003" not in mine  # not her line's PO
    assert maria.post("/spend/close", data={"csrf_token": csrf(mine), "month": "m01"}).status_code == 403
    assert "Spend control</a>" in mine


def test_finance_closes_the_months_in_order_on_the_page(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    page = fiona.get("/spend?month=m02").get_data(as_text=True)
    assert f"Close the accrual of {MONTHS[1].label}</button>" in page
    assert fiona.post("/spend/close", data={"month": "m01", "csrf_token": "forged"}).status_code == 400
    refused = fiona.post("/spend/close", data={"month": "m02", "csrf_token": csrf(page)}, follow_redirects=True)
    text = refused.get_data(as_text=True)
    assert "close the accrual of m01 first: months are closed in order" in text
    assert f"The accrual of {MONTHS[1].label} is open" in text
    page = fiona.get("/spend?month=m01").get_data(as_text=True)
    closed = fiona.post("/spend/close", data={"month": "m01", "csrf_token": csrf(page)}, follow_redirects=True)
    text = closed.get_data(as_text=True)
    assert f"The accrual of {MONTHS[0].label} is closed" in text
    assert f"Close the accrual of {MONTHS[0].label}" not in text
    again = fiona.post("/spend/close", data={"month": "m01", "csrf_token": csrf(page)}, follow_redirects=True)
    assert "the accrual of m01 is closed already" in again.get_data(as_text=True)
    assert f"Close the accrual of {MONTHS[1].label}" in fiona.get("/spend").get_data(as_text=True)  # next to close


@pytest.mark.parametrize("month", [0, 1])
def test_the_journal_download_debits_each_pos_accrual(service: Service, month: int) -> None:
    fiona = signed_in(service, "fiona")
    page = fiona.get(f"/spend?month={NAMES[month]}").get_data(as_text=True)
    assert f'href="/spend/journal.csv?month={NAMES[month]}"' in page
    answer = fiona.get(f"/spend/journal.csv?month={NAMES[month]}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    booked = [r for r in rows if not r["Journal"].endswith("-REV") and r["Debit"]]
    expected = {p[0]: accrual(p, month) for p in POS if accrual(p, month)}
    assert {r["Reference"]: money(r["Debit"]) for r in booked} == expected
    assert sum(money(r["Debit"]) for r in booked) == sum(accrual(p, month) for p in POS) > 0
    assert fiona.get("/spend/journal.csv?month=m13").status_code == 404
    assert service.app.test_client().get(f"/spend/journal.csv?month={NAMES[month]}").status_code == 302  # a login
