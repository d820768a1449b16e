"""The pages finance reads: the master, plan vs actual, performance, year over year, spend control and jobs.

Every figure on a page is the API's answer (the same domain function), shown as finance writes
money: the page is compared with /api/v1/rollup, /variance, /performance and /year-over-year cell
for cell, through the exact value each cell carries (data-cents, data-value) and through the text
a person reads. The charts draw one measure on one axis with round ticks, the targets as
markers, and flag a bar over its target in words as well as colour. In Chromium, each page holds
at 390 px (no sideways scroll) with its data in it; screenshots at 1440 and 390 px are written for
review.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sheet_templates.money import to_cents
from sheet_templates.samples import sample_lines
from sync_service.access.passwords import set_password
from sync_service.web.charts import nice_ticks
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.dashboard.web_helpers import PASSWORD, signed_in
from tests.sync_service.http_helpers import auth
from tests.sync_service.live_server import as_json, call
from tests.sync_service.service_helpers import (
    SCHEMA,
    Service,
    approved_plan,
    csv_bytes,
    line,
    make_service,
    post_actuals,
)

CURRENCY = SCHEMA.config.reporting_currency
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
EMEA_Q1 = int(SCHEMA.config.allocations["EMEA"]["Q1"])  # the organisation file's allocation, in units
LATAM_YEAR = sum(int(v) for v in SCHEMA.config.allocations["LATAM"].values())
NA_ABM_Q1 = 40_000  # finance's allocation of NA's ABM channel in Q1 (a channel's own cell)

PLANS = {
    "EMEA-ENTERPRISE": [
        # EMEA's Q1 plan passes its allocation: the master flags it
        line("E-1", crm="701SHARED", currency="EUR", m01=str(EMEA_Q1 // 2), m02=str(EMEA_Q1 // 4)),
        line("E-2", crm="701SHARED", channel="Webinars", m03=str(EMEA_Q1 // 3), m05="25000.50"),
        line("E-3", crm="701E3", channel="Content", m06="12000", m09="18000"),
    ],
    "NA-ENTERPRISE": [
        line("N-1", team="NA-ENTERPRISE", crm="701NA", channel="ABM", m01="50000", m04="30000"),
        line("N-2", team="NA-ENTERPRISE", crm="701NA2", channel="Paid Search", m02="20000", m07="15000"),
    ],
    # LATAM plans more in the year than its four quarters' allocations: the chart flags it
    "LATAM-ENTERPRISE": [
        line("L-1", team="LATAM-ENTERPRISE", **{m: str(LATAM_YEAR // 5) for m in ("m01", "m03", "m05", "m07")}),
        line("L-2", team="LATAM-ENTERPRISE", channel="Content", **{m: str(LATAM_YEAR // 8) for m in ("m09", "m11")}),
    ],
}
ACTUALS = [["Line ID", "Amount"], ["E-1", "400000"], ["E-2", "150000.25"], ["N-1", "61000"], ["N-2", "9000"]]
# results split over the two lines of a shared CRM campaign by planned spend: counts in hundredths
RESULTS = [
    ["CRM campaign ID", "Month", "Leads", "MQLs", "Opportunities", "Won", "Pipeline", "Revenue"],
    ["701SHARED", "m01", "1001", "301", "41", "7", "250000", "90000"],
    ["701E3", "m01", "120", "30", "5", "1", "40000", "0"],
    ["701NA", "m01", "3333", "999", "101", "23", "910000", "250000"],
    ["701NA2", "m01", "77", "20", "3", "0", "12000", "0"],
]


# --- reading what a page shows -------------------------------------------------------------------------------


def usd(cents: int) -> str:
    """Reporting cents as a table whose header names the currency shows them: separators, negatives in brackets."""
    text = f"{abs(Decimal(cents)) / 100:,.{2}f}"
    return f"({text})" if cents < 0 else text


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", markup))).strip()


def section(page: str, tag: str, id_: str) -> str:
    found = re.search(rf'<{tag}[^>]* id="{id_}"[^>]*>(.*?)</{tag}>', page, re.S) or re.search(
        rf'<{tag} id="{id_}"[^>]*>(.*?)</{tag}>', page, re.S
    )
    assert found is not None, id_
    return found.group(1)


def row(html: str, attribute: str, key: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(key)}">(.*?)</tr>', html, re.S)
    assert found is not None, key
    return found.group(1)


def amounts(row_html: str) -> list[tuple[str, int | None, str]]:
    """(class, data-cents, text) of each amount cell of a row."""
    cells = re.findall(r'<td class="([^"]*)" data-cents="(-?\d*)"[^>]*>(.*?)</td>', row_html, re.S)
    return [(cls, int(c) if c else None, text_of(t)) for cls, c, t in cells]


def charts(page: str) -> dict[str, str]:
    return dict(re.findall(r'<figure class="chart" id="([^"]+)"(.*?)</figure>', page, re.S))


def bars(chart: str) -> dict[str, dict[str, Any]]:
    """Each bar's row: its value, target (currency units or the ratio), whether it is flagged and its words."""
    out = {}
    for key, value, target, over, body in re.findall(
        r'<g class="row" data-key="([^"]+)" data-[a-z_]+="[^"]+" data-value="([^"]*)" data-target="([^"]*)"'
        r"( data-over)?>(.*?)</g>",
        chart,
        re.S,
    ):
        out[key] = {
            "value": Decimal(value) if value else None,
            "target": Decimal(target) if target else None,
            "over": bool(over),
            "words": text_of(body),
        }
    return out


SHORT = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def check_round_ticks(chart: str) -> list[Decimal]:
    """The chart's ticks: 1, 2, 2.5 or 5 times a power of ten apart, from zero, covering every bar and target,
    each labelled with its value in the short form (500K, 2.5M)."""
    ticks = re.findall(r'<g class="tick" data-value="(-?[\d.]+)">.*?<text[^>]*>([^<]+)</text></g>', chart, re.S)
    values = [Decimal(v) for v, _ in ticks]
    assert len(values) >= 2 and Decimal(0) in values, values
    steps = {b - a for a, b in pairwise(values)}
    assert len(steps) == 1, values
    step = steps.pop()
    mantissa = step.scaleb(-step.adjusted()).normalize()
    assert mantissa in {1, 2, Decimal("2.5"), 5}, (step, values)
    for value, label in ticks:
        shown = re.fullmatch(r"(-?\d+(?:\.\d{1,2})?)([KMBT]?)", label)
        assert shown is not None, label
        assert Decimal(shown.group(1)) * SHORT[shown.group(2)] == Decimal(value), (label, value)
    drawn = [x for b in bars(chart).values() for x in (b["value"], b["target"]) if x is not None]
    assert all(values[0] <= x <= values[-1] for x in drawn), (values, drawn)
    assert len(values) <= 8
    return values


def series(chart: str) -> set[str]:
    named = set(re.findall(r'<li data-series="([^"]+)">', chart)) - {"target", "flag"}
    drawn = set(re.findall(r'<rect class="bar" data-series="([^"]+)"', chart))
    assert drawn <= named, (drawn, named)  # every bar's series is in the legend
    return named


# --- the service, with plans, allocations, actual spend and results ----------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = make_service(f"sqlite:///{tmp_path_factory.mktemp('reading') / 'reading.db'}")
    with s.store.transaction() as session:
        for name in ("maria", "sam", "fiona"):
            set_password(session, name, PASSWORD)
    for team, lines in PLANS.items():
        approved_plan(s, lines, team)
    cell = {"region": "NA", "quarter": "Q1", "channel": "ABM", "amount": str(NA_ABM_Q1)}
    answer = s.client.patch("/api/v1/allocations", headers=auth(s.tokens["finance"]), json={"allocations": [cell]})
    assert answer.status_code == 200, answer.get_json()
    assert post_actuals(s, csv_bytes(ACTUALS)).status_code in (200, 201)
    results = s.client.post(
        "/api/v1/outcomes?filename=crm.csv",
        headers=auth(s.tokens["finance"]),
        data=csv_bytes(RESULTS),
        content_type="application/octet-stream",
    )
    assert results.status_code in (200, 201), results.get_data(as_text=True)
    yield s
    s.store.dispose()


def api(s: Service, path: str, who: str = "finance") -> Any:
    answer = s.client.get(path, headers=auth(s.tokens[who]))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def allocation_cells(s: Service) -> dict[tuple[str, str, str], int]:
    """The allocations in force as the API answers them: (region, quarter, channel or "*") -> cents."""
    return {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in api(s, "/api/v1/allocations")["allocations"]}


# --- the master ------------------------------------------------------------------------------------------------


def test_the_master_shows_the_apis_rollup_and_allocations_as_finance_writes_money(service: Service) -> None:
    page = signed_in(service).get("/master").get_data(as_text=True)
    planned = {
        (r["region"], r["period"]): r["cents"] for r in api(service, "/api/v1/rollup?by=region&period=quarter")["rows"]
    }
    years = {r["region"]: r["cents"] for r in api(service, "/api/v1/rollup?by=region&period=year")["rows"]}
    allocated = allocation_cells(service)
    table = section(page, "table", "master")
    assert 'class="sortable"' in re.search(r'<table id="master"[^>]*>', page).group(0)
    flagged = 0
    for region in SCHEMA.config.regions:
        cells = amounts(row(table, "data-region", region))
        assert len(cells) == 10, region  # four quarters and the year: planned, allocation
        for i, q in enumerate(QUARTERS):
            (cls, got, text), allocation = cells[2 * i], cells[2 * i + 1]
            want, limit = planned.get((region, q), 0), allocated[region, q, "*"]
            over = want > limit
            flagged += over
            assert got == want and allocation[1] == limit, (region, q)
            assert text == ("▲ " if over else "") + usd(want) and allocation[2] == usd(limit), (region, q)
            assert ("over" in cls.split()) is over, (region, q)
        assert cells[8][1] == years.get(region, 0) == sum(planned.get((region, q), 0) for q in QUARTERS)
        assert cells[9][1] == sum(allocated[region, q, "*"] for q in QUARTERS)
    assert flagged >= 1  # EMEA's Q1 plan is over its allocation: the test has something to flag
    # the totals row adds the regions up; the page's total is the year's
    foot = amounts(row(table, "data-region", "total"))
    for i, q in enumerate(QUARTERS):
        assert foot[2 * i][1] == sum(c for (_, p), c in planned.items() if p == q)
        assert foot[2 * i + 1][1] == sum(allocated[r, q, "*"] for r in SCHEMA.config.regions)
    total = sum(years.values())
    assert foot[8][1] == total and f'data-cents="{total}" id="master-total"' in page
    assert f"Total planned: <strong>${Decimal(total) / 100:,.2f}</strong>" in page
    assert "Q1 FY2027" in text_of(table) and "m01" not in text_of(page)
    for cents_, sort in re.findall(r'<td class="num[^"]*" data-cents="(-?\d*)" data-sort="(-?\d*)"', table):
        assert cents_ == sort  # a column sorts by its amounts, not by their text


def test_the_master_chart_draws_each_region_against_its_allocation_and_flags_the_over(service: Service) -> None:
    page = signed_in(service).get("/master").get_data(as_text=True)
    chart = charts(page)["master-chart"]
    years = {r["region"]: r["cents"] for r in api(service, "/api/v1/rollup?by=region&period=year")["rows"]}
    allocated = allocation_cells(service)
    drawn = bars(chart)
    assert set(drawn) == set(SCHEMA.config.regions)
    for region, bar in drawn.items():
        planned = Decimal(years.get(region, 0)) / 100
        allocation = Decimal(sum(allocated[region, q, "*"] for q in QUARTERS)) / 100
        assert bar["value"] == planned and bar["target"] == allocation, region
        over = planned > allocation
        assert bar["over"] is over and ("▲ Over allocation by" in bar["words"]) is over, region
    assert drawn["LATAM"]["over"]  # 4/5 + 2/8 of its year's allocation
    check_round_ticks(chart)
    assert series(chart) == {"Planned"} and "Allocation" in text_of(chart)
    assert 'viewBox="0 0 ' in chart and 'width="100%"' in chart  # drawn at the page's width


def test_the_channel_filter_says_why_the_allocations_are_blank_or_shows_the_channels_own(service: Service) -> None:
    fiona = signed_in(service)
    by_channel = api(service, "/api/v1/rollup?by=region,channel&period=quarter")["rows"]
    # No allocation is set for Events alone: the columns are empty, and the page says why.
    page = fiona.get("/master?channel=Events").get_data(as_text=True)
    assert "none is set for Events alone" in text_of(page)
    for region in SCHEMA.config.regions:
        cells = amounts(row(section(page, "table", "master"), "data-region", region))
        planned = {r["period"]: r["cents"] for r in by_channel if r["region"] == region and r["channel"] == "Events"}
        assert [c[1] for c in cells[0:8:2]] == [planned.get(q, 0) for q in QUARTERS], region
        assert [c[2] for c in cells[1::2]] == ["not set"] * 5, region
    assert not bars(charts(page)["master-chart"])["EMEA"]["over"]
    # Finance set NA's ABM allocation for Q1: the filter shows that cell, and NA's ABM plan is over it.
    page = fiona.get("/master?channel=ABM").get_data(as_text=True)
    assert "The allocations shown are ABM's own" in text_of(page)
    na = amounts(row(section(page, "table", "master"), "data-region", "NA"))
    abm = next(r for r in by_channel if (r["region"], r["channel"], r["period"]) == ("NA", "ABM", "Q1"))
    assert to_cents(abm["allocation"]) == NA_ABM_Q1 * 100 == na[1][1] and na[1][2] == usd(NA_ABM_Q1 * 100)
    assert na[0][1] == abm["cents"] > NA_ABM_Q1 * 100 and na[0][2].startswith("▲ ")
    assert [c[2] for c in na[3:8:2]] == ["not set"] * 3  # no ABM cell in Q2-Q4
    # A business unit has no allocation of its own: the page says the region's is shown.
    page = fiona.get("/master?business_unit=Enterprise").get_data(as_text=True)
    assert "Allocations are not set by business unit" in text_of(page)


def test_a_marketer_reads_that_the_allocation_is_the_whole_regions(service: Service) -> None:
    page = signed_in(service, "maria").get("/master").get_data(as_text=True)
    assert "Planned is your teams' plans; the allocation is the whole region's." in text_of(page)
    assert 'data-region="NA"' not in page


# --- plan vs actual ----------------------------------------------------------------------------------------


def test_plan_vs_actual_shows_the_apis_variance_with_totals_and_flags_in_words(service: Service) -> None:
    page = signed_in(service).get("/actuals?by=region").get_data(as_text=True)
    answer = api(service, "/api/v1/variance?by=region")
    table = section(page, "table", "actuals")
    shown = {}
    for r in answer["rows"]:
        cells = amounts(row(table, "data-key", r["region"]))
        want = [to_cents(r["planned_to_date"]), to_cents(r["actual"]), to_cents(r["planned"])]
        assert [c[1] for c in cells[:3]] == want, r["region"]
        assert [c[2] for c in cells[:3]] == [usd(w) for w in want]
        forecast = cells[3]
        over = forecast[1] > want[2]
        assert ("over" in forecast[0].split()) is over
        flag = text_of(re.search(r'<td class="status">(.*?)</td>', row(table, "data-key", r["region"]), re.S)[1])
        assert ("Forecast over plan by " + usd(forecast[1] - want[2]) in flag) is over, flag
        shown[r["region"]] = [c[1] for c in cells]
    foot = [c[1] for c in amounts(row(table, "data-key", "total"))]
    assert foot == [sum(v[i] for v in shown.values()) for i in range(4)]
    assert any(v[1] for v in shown.values())  # actual spend was imported
    for name in ("spend-to-date", "year-end"):
        chart = charts(page)[name]
        check_round_ticks(chart)
        assert len(series(chart)) == 1 and f"({CURRENCY})" in re.search(r'data-axis="([^"]+)"', chart)[1]
    to_date = bars(charts(page)["spend-to-date"])
    for r in answer["rows"]:
        assert to_date[r["region"]]["value"] == Decimal(to_cents(r["actual"])) / 100
        assert to_date[r["region"]]["target"] == Decimal(to_cents(r["planned_to_date"])) / 100


# --- performance ---------------------------------------------------------------------------------------------


def test_performance_shows_the_apis_figures_whole_counts_and_flags_cost_per_lead_over_target(service: Service) -> None:
    page = signed_in(service).get("/performance").get_data(as_text=True)
    assert "FY2027" in text_of(page)
    for by in ("region", "channel"):
        answer = api(service, f"/api/v1/performance?by={by}&period=year")
        units = {m["name"]: m["unit"] for m in answer["measures"]}
        table = section(page, "table", f"performance-{by}")
        totals: dict[str, int] = {}
        for r in answer["rows"]:
            cells = re.findall(
                r'<td class="([^"]*)" data-measure="([^"]+)" data-value="([^"]*)"[^>]*>(.*?)</td>',
                row(table, "data-key", r[by]),
                re.S,
            )
            assert len(cells) == 16
            for cls, name, raw, markup in cells:
                measure, _, which = name.partition("-")
                figure, unit = r["measures"][measure], units[measure]
                text = text_of(markup)
                want = figure[which or "actual"]
                if want is None:
                    assert raw == "" and text == "", (r[by], name)
                elif unit == "count":  # hundredths exactly; shown whole, with separators
                    assert int(raw) == round(Decimal(str(want)) * 100), (r[by], name)
                    whole = re.fullmatch(r"\d{1,3}(,\d{3})*", text)
                    assert whole and abs(int(text.replace(",", "")) - Decimal(raw) / 100) <= Decimal("0.5")
                elif unit == "ratio":  # the ratio exactly; shown to two decimals
                    assert float(raw) == pytest.approx(want, abs=1e-6), (r[by], name)
                    assert re.fullmatch(r"-?[\d,]+\.\d\d", text) and abs(
                        Decimal(text.replace(",", "")) - Decimal(raw)
                    ) <= Decimal("0.005")
                else:  # money and money per unit, in reporting cents
                    assert int(raw) == figure["cents"][which or "actual"] and text.startswith(usd(int(raw)))
                if name in ("spend", "leads", "pipeline") and raw:
                    totals[name] = totals.get(name, 0) + int(raw)
                if name == "cost_per_lead":
                    target = figure["cents"]["target"]
                    over = target is not None and int(raw or 0) > target
                    assert ("over" in cls.split()) is over and ("over target" in text) is over
        foot = dict(
            re.findall(
                r'data-measure="([^"]+)" data-value="([^"]*)"', re.search(r"<tfoot>(.*?)</tfoot>", table, re.S)[1]
            )
        )
        for name, total in totals.items():
            assert int(foot[name]) == total, (by, name)  # the totals row adds the rows up


def test_performance_charts_keep_spend_and_pipeline_apart_and_flag_over_target(service: Service) -> None:
    page = signed_in(service).get("/performance").get_data(as_text=True)
    drawn = charts(page)
    assert set(drawn) == {"pipeline-per-spend", "cost-per-lead"}
    for chart in drawn.values():
        named = series(chart)
        assert len(named) == 1  # one measure per chart, on its one axis
        assert not (named & {"Spend", "Actual spend", "Planned"} and named & {"Pipeline"})
        check_round_ticks(chart)
    answer = api(service, "/api/v1/performance?by=region&period=year")
    cpl = bars(drawn["cost-per-lead"])
    flagged = 0
    for r in answer["rows"]:
        cents = r["measures"]["cost_per_lead"]["cents"]
        bar = cpl[r["region"]]
        assert bar["value"] == (None if cents["actual"] is None else Decimal(cents["actual"]) / 100)
        assert bar["target"] == (None if cents["target"] is None else Decimal(cents["target"]) / 100)
        over = None not in (cents["actual"], cents["target"]) and cents["actual"] > cents["target"]
        flagged += over
        assert bar["over"] is over and ("▲ Over target by" in bar["words"]) is over
    assert flagged  # EMEA's cost per lead is over its target: the flag is drawn
    roi = bars(drawn["pipeline-per-spend"])
    for r in api(service, "/api/v1/performance?by=channel&period=year")["rows"]:
        figure = r["measures"]["pipeline_roi"]
        assert float(roi[r["channel"]]["value"] or 0) == pytest.approx(figure["actual"] or 0, abs=1e-6)
        below = None not in (figure["actual"], figure["expected"]) and figure["actual"] < figure["expected"]
        words = text_of(re.search(rf'data-key="{r["channel"]}".*?</g>', drawn["pipeline-per-spend"], re.S)[0])
        assert roi[r["channel"]]["over"] is below and ("▼ Below the plan's expectation" in words) is below


# --- year over year, jobs -------------------------------------------------------------------------------------


def test_year_over_year_and_jobs_read_as_people_write_them(service: Service) -> None:
    following = SCHEMA.calendar.year + 1
    lines = [as_json(x) for x in sample_lines(SCHEMA.for_year(following), "EMEA", 4, seed=3)]
    sent = service.client.post(
        f"/api/v1/submissions?year={following}",
        headers=auth(service.tokens["finance2"]),
        json={"team": "EMEA-ENTERPRISE", "lines": lines},
    )
    assert sent.status_code == 201, sent.get_json()
    done = service.client.post(
        f"/api/v1/submissions/{sent.get_json()['id']}/approve", headers=auth(service.tokens["finance"]), json={}
    )
    assert done.status_code == 200, done.get_json()
    fiona = signed_in(service)
    page = fiona.get(f"/year-over-year?year={following}").get_data(as_text=True)
    answer = api(service, f"/api/v1/year-over-year?year={following}&by=region&period=year")
    table = section(page, "table", "year-over-year")
    keys = ("plan", "last_plan", "last_actual", "last_estimate")
    for r in answer["rows"]:
        cells = amounts(row(table, "data-key", r["region"]))
        assert [c[1] for c in cells[:4]] == [r["cents"][k] for k in keys]
        assert [c[2] for c in cells[:4]] == ["" if r["cents"][k] is None else usd(r["cents"][k]) for k in keys]
    foot = amounts(row(table, "data-key", "total"))
    for i, k in enumerate(keys):
        values = [r["cents"][k] for r in answer["rows"]]
        assert foot[i][1] == (None if None in values else sum(values)), k
    # a job's times are written as people read them, not as stored
    built = service.client.post("/api/v1/master/workbook", headers=auth(service.tokens["finance"]), json={})
    assert built.status_code < 300, built.get_json()
    jobs = fiona.get("/jobs").get_data(as_text=True)
    times = re.findall(r'<td data-sort="(\d{4}-[^"]+)">([^<]+)</td>', jobs)
    assert times and all("T" not in shown and re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", shown) for _, shown in times)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2), st.decimals(min_value=0, max_value=10**11, places=2))
def test_ticks_are_round_and_cover_the_range(low: Decimal, span: Decimal) -> None:
    high = low + span
    ticks = nice_ticks(low, high)
    assert ticks[0] <= min(low, 0) and ticks[-1] >= max(high, 0) and 0 in ticks
    step = ticks[1] - ticks[0]
    assert all(b - a == step for a, b in pairwise(ticks))
    assert step.scaleb(-step.adjusted()).normalize() in {1, 2, Decimal("2.5"), 5}
    assert 2 <= len(ticks) <= 7


# --- in Chromium: 1440 and 390 px ---------------------------------------------------------------------------

PAGES = ("/master", "/master?channel=ABM", "/actuals", "/performance", "/spend", "/spend?by=line", "/jobs")


@pytest.fixture(scope="module")
def planned_site(site: tuple[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The live service with 60 EMEA lines (the by-line spend view pages) and NA's plan, approved."""
    base, tokens = site
    for team, who, n, seed in (("EMEA-ENTERPRISE", "maria", 60, 11), ("NA-ENTERPRISE", "sam", 8, 12)):
        lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], n, seed=seed)]
        status, body = call(base, tokens[who], "POST", "/api/v1/submissions", {"team": team, "lines": lines})
        assert status == 201, body
        status, body = call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{body['id']}/approve", {})
        assert status == 200, body
    cell = {"region": "NA", "quarter": "Q1", "channel": "ABM", "amount": "1000"}
    status, body = call(base, tokens["fiona"], "PATCH", "/api/v1/allocations", {"allocations": [cell]})
    assert status == 200, body
    status, body = call(base, tokens["fiona"], "POST", "/api/v1/master/workbook", {}, wait=20)  # a job to list
    assert status < 300, body
    return base, tokens


@pytest.mark.chromium
def test_each_reading_page_holds_at_390_px_with_its_data(planned_site, browser, tmp_path: Path) -> None:
    base, _ = planned_site
    for name, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        page = log_in(browser, base, "fiona", viewport)
        for path in PAGES:
            page.goto(base + path)
            assert page.locator("main table tbody tr td").count() > 1, path  # the page has its data
            slug = path.strip("/").replace("?", "-").replace("=", "-")
            page.screenshot(path=tmp_path / f"{slug}-{viewport['width']}.png", full_page=True)
            if name == "phone":
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
        page.context.close()
    assert len(list(tmp_path.glob("*.png"))) == 2 * len(PAGES)


@pytest.mark.chromium
def test_finance_sorts_the_master_and_pages_through_the_spend_by_line(planned_site, browser) -> None:
    base, tokens = planned_site
    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/master")
    year = page.locator("#master thead tr:last-child th").nth(9)  # the year's planned
    year.click()
    cells = page.locator("#master tbody tr td:nth-child(10)")
    first = [int(c) for c in cells.evaluate_all("cells => cells.map(c => c.dataset.sort)")]
    assert first == sorted(first) and year.get_attribute("aria-sort") == "ascending"
    year.click()
    again = [int(c) for c in cells.evaluate_all("cells => cells.map(c => c.dataset.sort)")]
    assert again == sorted(first, reverse=True)
    assert page.locator("#master tfoot tr").count() == 1  # the totals stay under the rows
    # the chart flags NA's plan over its allocation in words, and scales with the page
    na = page.locator("#master-chart g.row[data-region=NA]")
    _, rollup = call(base, tokens["fiona"], "GET", "/api/v1/rollup?by=region&period=quarter")
    planned = sum(r["cents"] for r in rollup["rows"] if r["region"] == "NA")
    allocated = sum(to_cents(r["allocation"]) for r in rollup["rows"] if r["region"] == "NA")
    assert (na.get_attribute("data-over") is not None) is (planned > allocated)
    width = page.locator("#master-chart svg").evaluate("svg => svg.getBoundingClientRect().width")
    assert width > 400
    # the by-line spend view: 60 EMEA lines and NA's, 50 a page, searchable
    page.goto(f"{base}/spend?by=line")
    status = page.locator(".table-tools [role=status]")
    assert re.fullmatch(r"68 rows · page 1 of 2", status.inner_text())
    assert page.locator("#spend tbody tr:not([hidden])").count() == 50
    page.get_by_role("button", name="Next").click()
    assert page.locator("#spend tbody tr:not([hidden])").count() == 18
    page.get_by_label("Search").fill("NA-ENTERPRISE")
    assert status.inner_text() == "8 rows · page 1 of 1"
    page.context.close()
