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

from tests.dashboard.web_helpers import csrf, signed_in, spend_site
from tests.sync_service.service_helpers import Service
from tests.sync_service.spend_helpers import (
    INVOICES,
    MONTHS,
    NAMES,
    PLAN,
    POS,
    TEAM,
    accrual,
    cents,
    invoiced_by,
    line_figures,
    money,
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with spend_site(f"sqlite:///{tmp_path / 'spend.db'}") as s:
        yield s


def shown(cents: int) -> str:
    """An amount as finance reads it in a table whose header names the currency: separators, two decimals,
    a negative in parentheses."""
    text = f"{abs(Decimal(cents)) / 100:,.2f}"
    return f"({text})" if cents < 0 else text


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def row_cells(page: str, key: str) -> list[tuple[int, str]]:
    """(data-cents, the text a person reads) of each amount cell of the row `key`."""
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row is not None, key
    cells = re.findall(r'<td class="num[^"]*" data-cents="(-?\d+)"[^>]*>(.*?)</td>', row.group(1), re.S)
    return [(int(c), text_of(t)) for c, t in cells]


def table(page: str, id_: str) -> str:
    return re.search(rf'<table id="{id_}"[^>]*>(.*?)</table>', page, re.S).group(1)


def expected_cells(figures: dict[str, int]) -> list[tuple[int, str]]:
    """What each amount cell holds and says; remaining below zero is flagged in words, not by colour alone."""
    out = []
    for n in MEASURES:
        c = figures[n]
        out.append((c, shown(c) + (" ▲ over plan" if n == "remaining" and c < 0 else "")))
    return out


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
            assert row_cells(page, key) == expected_cells(figures), (by, key)
        totals = [(t, shown(t)) for t in (sum(f[n] for f in expected.values()) for n in MEASURES)]
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


def test_po_amounts_read_in_each_pos_own_currency_and_the_long_tables_page_and_sort(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    page = fiona.get(f"/spend?by=line&month={NAMES[1]}").get_data(as_text=True)
    # the by-line view (a row per plan line: thousands of rows in a year) has search and pages, and sorts
    assert re.search(r'<table id="spend" class="sortable paged" data-page-size="50">', page)
    assert re.search(r'<table id="spend" class="sortable" ', fiona.get("/spend?by=region").get_data(as_text=True))
    row = re.search(r'<tr data-po="PO-1002">(.*?)</tr>', table(page, "over-po"), re.S).group(1)
    cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    amount, billed = cents(POS[1][2]), invoiced_by("PO-1002")
    assert cells[5:] == ["by campaign code", "EUR", shown(amount), shown(billed), shown(billed - amount)]
    assert re.findall(r'data-cents="(-?\d+)"', row) == [str(amount), str(billed), str(billed - amount)]
    unmatched = re.search(r'<tr data-invoice="INV-4">(.*?)</tr>', table(page, "unmatched-invoices"), re.S).group(1)
    assert text_of(unmatched).endswith(shown(cents(INVOICES[3][2])))
    # the accrual by team adds up in its footer: the teams, what no plan line holds, the total
    by_team = table(page, "accrual-by-team")
    body = re.search(r"<tbody>(.*?)</tbody>", by_team, re.S).group(1)
    teams = sum(int(c) for c in re.findall(r'data-cents="(-?\d+)"', body))
    foot = dict(re.findall(r'<tr data-key="([^"]+)">.*?data-cents="(-?\d+)"', by_team, re.S))
    assert teams + int(foot["not-on-a-line"]) == int(foot["total"]) > 0
    for cell in re.findall(r'<td class="num[^"]*" data-cents="(-?\d+)" data-sort="(-?\d+)"', page):
        assert cell[0] == cell[1]  # a column of amounts sorts by the amounts, not by their text


def test_the_spend_chart_stacks_invoiced_and_committed_against_the_plan(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    page = fiona.get(f"/spend?by=team&month={NAMES[1]}").get_data(as_text=True)
    chart = re.search(r'<figure class="chart" id="spend-chart"(.*?)</figure>', page, re.S).group(1)
    want = dict.fromkeys(MEASURES, 0)
    for x in PLAN:
        for name, value in line_figures(x["line_id"], 1).items():
            want[name] += value
    bar = re.search(rf'<g class="row" data-key="{TEAM}"[^>]*>', chart).group(0)
    assert f'data-target="{Decimal(want["plan"]) / 100}"' in bar
    parts = dict(re.findall(r'<rect class="bar" data-series="([^"]+)" data-key="[^"]+" data-team="[^"]+" '
                            r'data-value="([^"]*)"', chart))  # fmt: skip
    assert parts == {"Invoiced": str(Decimal(want["invoiced"]) / 100),
                     "Committed (open PO)": str(Decimal(want["committed"]) / 100)}  # fmt: skip
    over = want["committed"] + want["invoiced"] > want["plan"]
    assert ("data-over" in bar) is over and ("Over plan by" in chart) is over
    # one measure (the reporting currency) on the chart's one axis; its legend names the series and the marker
    assert 'data-axis="Spend for the year (USD)"' in chart
    assert re.findall(r'<li data-series="([^"]+)">', chart)[:3] == ["Invoiced", "Committed (open PO)", "target"]
