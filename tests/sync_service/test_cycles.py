"""Reforecast cycles through the API and the team's xlsx, on SQLite and PostgreSQL.

Every expected amount is worked out here from the lines and the actuals the test sent (plan
rates from the organisation file, rounded half away from zero), never read back from the
service's own answer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openpyxl
import pytest

from sheet_templates.excel_template import NAME_CLOSED, NAME_CYCLE
from sync_service.platform.storage import Submission
from tests.sync_service.http_helpers import auth, problem, upload
from tests.sync_service.service_helpers import SCHEMA, Service, csv_bytes, line, make_service, post_actuals, submit

RATES = SCHEMA.config.plan_rates
MONTHS = [c.name for c in SCHEMA.month_columns]
QUARTERS = {f"Q{q + 1}": MONTHS[3 * q : 3 * q + 3] for q in range(4)}
# EMEA-ENTERPRISE's approved plan: a USD line and a EUR line, planned in every quarter.
PLAN = [
    line("EMEA-0001", m01="1000", m02="1000", m03="1000", m04="2000", m05="2000", m07="500.50"),
    line("EMEA-0002", channel="Webinars", currency="EUR", m01="333.33", m03="100", m04="250", m10="75.25"),
]
# What the finance system booked, by fiscal month, in the lines' currencies.
BOOKED = {("EMEA-0001", "m01"): "900", ("EMEA-0001", "m02"): "1250.40", ("EMEA-0002", "m03"): "410.10"}


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = make_service(database_url)
    yield s
    s.store.dispose()


def cents(amount: str, currency: str) -> int:
    return int((Decimal(amount) * RATES[currency] * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def plan_cents(lines: list[dict[str, Any]], months: list[str]) -> int:
    return sum(cents(x.get(m, "0"), x["currency"]) for x in lines for m in months)


def booked_cents(months: list[str]) -> int:
    """Booked spend of the months, a line's months converted together (the read model's cumulative rule)."""
    total = 0
    for x in PLAN:
        amount = sum(Decimal(BOOKED.get((x["line_id"], m), "0")) for m in months)
        total += cents(str(amount), x["currency"])
    return total


def approve(s: Service, submission: int) -> None:
    answer = s.client.post(f"/api/v1/submissions/{submission}/approve", headers=auth(s.tokens["finance"]), json={})
    assert answer.status_code == 200, answer.get_data(as_text=True)


def prepared(s: Service) -> int:
    """The approved plan, a locked budget and monthly actuals; the submission approved."""
    sid = submit(s.client, s.tokens["emea"], PLAN).get_json()["id"]
    approve(s, sid)
    finance = auth(s.tokens["finance"])
    assert s.client.post("/api/v1/baselines", headers=finance, json={"name": "FY budget"}).status_code == 201
    rows = [["Line ID", "Month", "Amount", "Currency"]]
    currency = {x["line_id"]: x["currency"] for x in PLAN}
    rows += [[lid, m, amount, currency[lid]] for (lid, m), amount in BOOKED.items()]
    imported = post_actuals(s, csv_bytes(rows))
    assert imported.status_code in (200, 201), imported.get_data(as_text=True)
    return sid


def open_cycle(s: Service, **body: Any) -> Any:
    sent = {"name": "Q1 reforecast", "through": "m03", "deadline": "2027-04-20", **body}
    return s.client.post("/api/v1/cycles", headers=auth(s.tokens["finance"]), json=sent)


def test_a_cycle_locks_its_closed_months_and_one_is_open_at_a_time(service: Service) -> None:
    prepared(service)
    problem(service.client.post("/api/v1/cycles", headers=auth(service.tokens["emea"]), json={}), 403)
    problem(open_cycle(service, through="m13"), 400)
    problem(open_cycle(service, through="m12"), 400)  # nothing left to forecast
    problem(open_cycle(service, deadline="20 April"), 400)
    opened = open_cycle(service)
    assert opened.status_code == 201, opened.get_data(as_text=True)
    cycle = opened.get_json()
    assert (cycle["status"], cycle["closed_months"], cycle["deadline"]) == ("open", MONTHS[:3], "2027-04-20")
    periods = service.client.get("/api/v1/periods", headers=auth(service.tokens["emea"])).get_json()["periods"]
    assert [p["month"] for p in periods if p["locked"]] == MONTHS[:3]
    problem(open_cycle(service, name="Another"), 409)
    mine = service.client.get(f"/api/v1/cycles/{cycle['id']}", headers=auth(service.tokens["emea"])).get_json()
    assert mine["teams"] == [{"team": "EMEA-ENTERPRISE", "status": "not submitted", "submission": None,
                              "submitted_at": None}]  # fmt: skip
    closed = service.client.post(f"/api/v1/cycles/{cycle['id']}/close", headers=auth(service.tokens["finance"]))
    assert closed.get_json()["status"] == "closed"
    problem(service.client.post(f"/api/v1/cycles/{cycle['id']}/close", headers=auth(service.tokens["finance"])), 409)
    problem(open_cycle(service), 409)  # the name is taken
    assert open_cycle(service, name="Q2 reforecast", through="m06").status_code == 201
    listed = service.client.get("/api/v1/cycles", headers=auth(service.tokens["na"])).get_json()["cycles"]
    assert [(c["name"], c["status"]) for c in listed] == [("Q2 reforecast", "open"), ("Q1 reforecast", "closed")]


def test_the_reforecast_template_shows_actuals_in_locked_closed_months_that_are_never_read(service: Service) -> None:
    sid = prepared(service)
    cycle = open_cycle(service).get_json()
    emea = service.tokens["emea"]
    got = service.client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(emea))
    assert got.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(got.data))
    assert book.defined_names[NAME_CLOSED].attr_text == '"m01,m02,m03"'
    assert book.defined_names[NAME_CYCLE].attr_text == str(cycle["id"])
    plan = book["Plan"]
    rows = {plan.cell(r, SCHEMA["line_id"].index).value: r for r in range(2, 5)}
    for x in PLAN:
        r = rows[x["line_id"]]
        for m in MONTHS[:3]:
            cell = plan.cell(r, SCHEMA[m].index)
            assert Decimal(str(cell.value or 0)) == Decimal(BOOKED.get((x["line_id"], m), "0")), (x["line_id"], m)
            assert cell.protection.locked, f"{m} is closed: its cell is locked"
        for m in MONTHS[3:6]:
            cell = plan.cell(r, SCHEMA[m].index)
            assert Decimal(str(cell.value or 0)) == Decimal(x.get(m, "0"))
            assert not cell.protection.locked
    # The marketer forecasts the open months, and (the sheet unprotected) types over a closed month.
    usd = rows["EMEA-0001"]
    plan.cell(usd, SCHEMA["m04"].index).value = 3000
    plan.cell(usd, SCHEMA["m05"].index).value = 0
    plan.cell(usd, SCHEMA["m02"].index).value = 99999
    out = io.BytesIO()
    book.save(out)
    sent = upload(service.client, emea, out.getvalue())
    assert sent.status_code == 201, sent.get_data(as_text=True)
    report = sent.get_json()["report"]["issues"]
    closed_notes = [i for i in report if i["rule"] == "period.closed"]
    assert [i["location"] for i in closed_notes] == [f"Plan!{SCHEMA['m02'].letter}{usd}"]
    assert closed_notes[0]["severity"] == "warning" and "not read" in closed_notes[0]["message"]
    with service.store.reading() as session:
        stored = session.get(Submission, sent.get_json()["id"])
        values = {line.line_id: line.values for line in stored.lines}
        assert stored.cycle_id == cycle["id"]
    for x in PLAN:  # the closed months keep the approved plan, whatever the cells showed or held
        for m in MONTHS[:3]:
            assert Decimal(values[x["line_id"]][m] or 0) / 100 == Decimal(x.get(m, "0"))
    assert (values["EMEA-0001"]["m04"], values["EMEA-0001"]["m05"]) == (300000, 0)
    status = service.client.get(f"/api/v1/cycles/{cycle['id']}", headers=auth(emea)).get_json()["teams"]
    assert status[0]["status"] == "submitted"
    approve(service, sent.get_json()["id"])
    status = service.client.get(f"/api/v1/cycles/{cycle['id']}", headers=auth(emea)).get_json()["teams"]
    assert status[0]["status"] == "approved"
    # A JSON reforecast that changes a closed month is refused, naming the cell: the months are locked.
    changed = [dict(PLAN[0], m04="3000", m05="0", m01="1"), PLAN[1]]
    refused = submit(service.client, emea, changed, based_on={"submission": sent.get_json()["id"]})
    assert [i["rule"] for i in problem(refused, 422)["issues"]] == ["period.locked"]
    del sid


def test_budget_against_the_latest_estimate_is_actuals_to_date_plus_the_forecast(service: Service) -> None:
    sid = prepared(service)
    open_cycle(service)
    forecast = [dict(PLAN[0], m04="3000", m05="0", m08="1200"), dict(PLAN[1], m10="0", m11="80")]
    sent = submit(service.client, service.tokens["emea"], forecast, based_on={"submission": sid})
    assert sent.status_code == 201, sent.get_data(as_text=True)
    approve(service, sent.get_json()["id"])
    view = service.client.get("/api/v1/budget?by=region&period=quarter", headers=auth(service.tokens["finance"]))
    body = view.get_json()
    assert body["closed_months"] == MONTHS[:3]
    rows = {r["period"]: r for r in body["rows"]}
    for q, months in QUARTERS.items():
        budget = plan_cents(PLAN, months)
        # Q1 is closed: what was booked; the open quarters: the approved forecast.
        estimate = booked_cents(months) if q == "Q1" else plan_cents(forecast, months)
        assert rows[q]["cents"]["budget"] == budget, q
        assert rows[q]["cents"]["estimate"] == estimate, q
        assert Decimal(rows[q]["estimate_vs_budget"]) * 100 == estimate - budget, q
    year = service.client.get("/api/v1/budget?by=region,channel&period=year", headers=auth(service.tokens["emea"]))
    by_channel = {r["channel"]: r["cents"]["estimate"] for r in year.get_json()["rows"]}
    for x in forecast:
        booked = sum(Decimal(BOOKED.get((x["line_id"], m), "0")) for m in MONTHS[:3])
        expected = cents(str(booked), x["currency"]) + plan_cents([x], MONTHS[3:])
        assert by_channel[x["channel"]] == expected, x["channel"]


def test_without_monthly_actuals_only_the_year_has_an_estimate(service: Service) -> None:
    sid = submit(service.client, service.tokens["emea"], PLAN).get_json()["id"]
    approve(service, sid)
    finance = auth(service.tokens["finance"])
    assert service.client.post("/api/v1/baselines", headers=finance, json={"name": "FY budget"}).status_code == 201
    rows = [["Line ID", "Amount", "Currency"], ["EMEA-0001", "2500", "USD"], ["EMEA-0002", "300", "EUR"]]
    assert post_actuals(service, csv_bytes(rows)).status_code in (200, 201)
    open_cycle(service)
    body = service.client.get("/api/v1/budget?by=region&period=quarter", headers=finance).get_json()
    by_period = {r["period"]: r for r in body["rows"]}
    assert by_period["Q1"]["estimate"] is None  # the export has no months: Q1's spend month by month is unknown
    assert by_period["Q2"]["cents"]["estimate"] == plan_cents(PLAN, QUARTERS["Q2"])
    year = service.client.get("/api/v1/budget?by=region&period=year", headers=finance).get_json()["rows"][0]
    assert year["cents"]["estimate"] == cents("2500", "USD") + cents("300", "EUR") + plan_cents(PLAN, MONTHS[3:])
    # The template shows the approved plan in the closed months when there is no monthly actual to show.
    got = service.client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(service.tokens["emea"]))
    plan = openpyxl.load_workbook(io.BytesIO(got.data))["Plan"]
    assert Decimal(str(plan.cell(2, SCHEMA["m01"].index).value)) == Decimal("1000")


def test_a_reforecast_made_for_a_closed_cycle_is_refused(service: Service) -> None:
    prepared(service)
    cycle = open_cycle(service).get_json()
    emea = service.tokens["emea"]
    old = service.client.get("/api/v1/templates/EMEA-ENTERPRISE.xlsx", headers=auth(emea)).data
    finance = auth(service.tokens["finance"])
    assert service.client.post(f"/api/v1/cycles/{cycle['id']}/close", headers=finance).status_code == 200
    before = service.client.get("/api/v1/submissions", headers=finance).get_json()
    refused = problem(upload(service.client, emea, old), 409)
    assert "closed" in refused["detail"] and "current template" in refused["detail"]
    assert service.client.get("/api/v1/submissions", headers=finance).get_json() == before
