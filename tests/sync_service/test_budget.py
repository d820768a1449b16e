"""Finance's controls through the API: rollup, variance, allocations, actuals, locked months, plan bases.

Every expected number is worked out here from the lines the test sent (plan rates from the
organisation file, each line's amount converted and rounded half away from zero on its own),
never read back from the service's own answer.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from sheet_templates.schema import NAME_BASED_ON
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.storage import ActualImport, Submission
from tests.sync_service.http_helpers import auth, decide, problem
from tests.sync_service.service_helpers import (
    RATES,
    SCHEMA,
    Service,
    actuals_by_line,
    approved_plan,
    cents,
    csv_bytes,
    fmt,
    get,
    line,
    post_actuals,
    reporting,
    stored_plan,
    submit,
    xlsx_bytes,
)
from tests.sync_service.service_helpers import service as service

MONTHS = [f"m{i:02d}" for i in range(1, 13)]
QUARTER = {m: f"Q{(i - 1) // 3 + 1}" for i, m in enumerate(MONTHS, start=1)}  # fiscal quarters of three months


# --- set-up and helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def refusing(service: Service) -> Iterator[Any]:
    """A second app on the same database whose setting OVER_ALLOCATION is "refuse"; its test client."""
    app = create_app({"DATABASE_URL": service.url, "TESTING": True, "OVER_ALLOCATION": "refuse"})
    yield app.test_client()
    app.extensions[STORE].dispose()


def put_allocations(service: Service, cells: list[dict[str, Any]], who: str = "finance") -> Any:
    return service.client.put(
        "/api/v1/allocations", headers=auth(service.tokens[who]), json={"allocations": cells, "replace": True}
    )


def by_key(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out = {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}
    assert len(out) == len(rows), "the rows repeat a group"
    return out


# --- rollup ------------------------------------------------------------------------------------------------------


def test_the_rollup_by_region_channel_and_quarter_is_the_sum_of_the_approved_lines(service: Service) -> None:
    emea = [
        line("E1", channel="Events", m01="1000.10", m02="250.00", m05="99.99"),
        line("E2", channel="Events", currency="EUR", m01="0.05", m07="1234.57"),  # EUR at 1.08
        line("E3", channel="Events", currency="EUR", m02="0.05"),  # 5.4 cents: the lines round one by one
        line("E4", channel="Email", currency="GBP", m03="0.50", m12="10.00"),  # 63.5 cents rounds up to 64
    ]
    smb = [line("S1", team="EMEA-SMB", channel="Email", m04="300.00", committed="40.00")]
    na = [line("N1", team="NA-ENTERPRISE", channel="Paid Search", m10="777.77", committed="12.34")]
    approved_plan(service, emea, based_on={"submission": None})
    approved_plan(service, smb, team="EMEA-SMB")
    approved_plan(service, na, team="NA-ENTERPRISE")

    def expected(lines: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
        totals: dict[tuple[str, str, str], int] = {}
        for x in lines:
            for q in ("Q1", "Q2", "Q3", "Q4"):  # every group gets all four quarters, zero or not
                spent = sum(cents(x[m]) for m in MONTHS if m in x and QUARTER[m] == q)
                key = (x["region"], x["channel"], q)
                totals[key] = totals.get(key, 0) + reporting(spent, x["currency"])
        return totals

    body = get(service, "/api/v1/rollup?by=region,channel&period=quarter")
    assert body["by"] == ["region", "channel"] and body["period"] == "quarter" and body["currency"] == "USD"
    assert body["master_version"] == 3 and body["measure"] == "planned"
    got = {(r["region"], r["channel"], r["period"]): r for r in body["rows"]}
    want = expected(emea + smb + na)
    assert {k: r["cents"] for k, r in got.items()} == want
    assert {k: r["amount"] for k, r in got.items()} == {k: fmt(v) for k, v in want.items()}
    # Spot checks of the rounding: two EUR lines of 0.05 each are 5 + 5 cents, not 10.8 -> 11.
    assert want[("EMEA", "Events", "Q1")] == 100010 + 25000 + 5 + 5
    assert want[("EMEA", "Email", "Q1")] == 64

    # By region only: each quarter's row carries the region's allocation and what remains of it.
    regions = by_key(get(service, "/api/v1/rollup?by=region")["rows"], "region", "period")
    for (region, quarter), row in regions.items():
        planned = sum(v for (r, _, q), v in want.items() if (r, q) == (region, quarter))
        allocation = cents(SCHEMA.config.allocations[region][quarter])
        assert (row["cents"], row["allocation"], row["remaining"]) == (
            planned,
            fmt(allocation),
            fmt(allocation - planned),
        )
    assert {r for r, _ in regions} == {"EMEA", "NA"}

    committed = by_key(get(service, "/api/v1/rollup?by=region&measure=committed")["rows"], "region")
    assert {r: row["cents"] for r, row in committed.items()} == {"EMEA": 4000, "NA": 1234}

    # A marketer sees only the totals of its own teams: not EMEA-SMB's email, not NA.
    mine = get(service, "/api/v1/rollup?by=region,channel&period=quarter", "emea")
    assert {(r["region"], r["channel"], r["period"]): r["cents"] for r in mine["rows"]} == expected(emea)

    for query in (
        "by=colour",
        "by=region,region",
        "by=line_id",
        "period=week",
        "measure=colour",
        "measure=m01",
        "measure=region",
        "measure=committed&period=week",  # a period is checked even for a measure that has none
    ):
        body = problem(service.client.get(f"/api/v1/rollup?{query}", headers=auth(service.tokens["finance"])), 400)
        assert body["detail"]


# --- variance ----------------------------------------------------------------------------------------------------


def test_variance_is_plan_to_date_against_actual_spend_with_its_flag(service: Service) -> None:
    assert SCHEMA.calendar.months[0].first_day == dt.date(2026, 2, 1)  # FY2027 starts in February 2026
    emea = [
        # Events: planned to date 100 + 200 + 300 (Feb..Apr), actual 500 -> 100 under plan: favourable
        line("E1", channel="Events", m01="100", m02="200", m03="300", m04="1000", actual="500", committed="50"),
        # Email, in EUR: to date 100.01 + 0.04 EUR = 108.054 -> 108.05 USD, actual 120 EUR = 129.60 USD
        line("E2", channel="Email", currency="EUR", m01="100.01", m03="0.04", m06="10", actual="120"),
    ]
    na = [line("N1", team="NA-ENTERPRISE", channel="Events", m02="75.25", m11="20", actual="75.25")]
    approved_plan(service, emea)
    approved_plan(service, na, team="NA-ENTERPRISE")

    body = get(service, "/api/v1/variance?by=region,channel&as_of=2026-05-20")  # Feb, Mar and Apr have closed
    assert body["as_of"] == "2026-05-20" and body["closed_months"] == 3
    assert body["actual_source"] == "plans" and body["actuals_import"] is None and body["currency"] == "USD"
    rows = by_key(body["rows"], "region", "channel")
    assert set(rows) == {("EMEA", "Events"), ("EMEA", "Email"), ("NA", "Events")}

    expected = {
        ("EMEA", "Events"): (cents("1600"), 60000, 50000, "favourable"),
        ("EMEA", "Email"): (reporting(cents("110.05"), "EUR"), reporting(10005, "EUR"), 12960, "unfavourable"),
        ("NA", "Events"): (cents("95.25"), 7525, 7525, "on plan"),
    }
    for key, (planned, to_date, actual, flag) in expected.items():
        row = rows[key]
        assert row["planned"] == fmt(planned)
        assert row["planned_to_date"] == fmt(to_date)
        assert row["actual"] == fmt(actual)
        assert row["variance"] == fmt(to_date - actual)
        assert row["flag"] == flag
        assert row["variance_pct"] == pytest.approx(round((to_date - actual) / to_date, 6))
    assert rows[("EMEA", "Email")]["planned_to_date"] == "108.05"
    assert rows[("EMEA", "Email")]["variance"] == "-21.55"

    # By region: the year's allocation, and what is left after commitments and actual spend.
    regions = by_key(get(service, "/api/v1/variance?by=region&as_of=2026-05-20")["rows"], "region")
    year = {r: sum(cents(v) for v in q.values()) for r, q in SCHEMA.config.allocations.items()}
    assert regions["EMEA"]["allocation"] == fmt(year["EMEA"])
    assert regions["EMEA"]["remaining"] == fmt(year["EMEA"] - 5000 - (50000 + 12960))
    assert regions["EMEA"]["variance"] == fmt(60000 + 10805 - 50000 - 12960)
    assert regions["NA"]["remaining"] == fmt(year["NA"] - 7525)

    # With no dimension: one grand total.
    [total] = get(service, "/api/v1/variance?by=,&as_of=2026-05-20")["rows"]
    assert (total["planned_to_date"], total["actual"]) == (fmt(60000 + 10805 + 7525), fmt(50000 + 12960 + 7525))

    # Before the year nothing is due yet; after it, the whole plan is.
    early = by_key(get(service, "/api/v1/variance?by=region&as_of=2026-02-15")["rows"], "region")
    assert get(service, "/api/v1/variance?as_of=2026-02-15")["closed_months"] == 0
    assert early["NA"]["planned_to_date"] == "0.00" and early["NA"]["flag"] == "unfavourable"
    assert early["NA"]["variance_pct"] is None  # no percentage of nothing
    late = get(service, "/api/v1/variance?by=region&as_of=2027-03-01")
    assert late["closed_months"] == 12
    assert by_key(late["rows"], "region")["NA"]["planned_to_date"] == "95.25"

    for as_of in ("2026-13-01", "yesterday", "20/05/2026"):
        detail = problem(service.client.get(f"/api/v1/variance?as_of={as_of}", headers=auth(service.tokens["na"])), 400)
        assert as_of in detail["detail"]
    problem(service.client.get("/api/v1/variance?by=colour", headers=auth(service.tokens["na"])), 400)
    # A marketer's variance covers its own team only.
    assert [r["region"] for r in get(service, "/api/v1/variance?as_of=2026-05-20", "na")["rows"]] == ["NA"]


# --- allocations -------------------------------------------------------------------------------------------------


def test_finance_replaces_the_allocations_and_an_invalid_cell_changes_nothing(service: Service) -> None:
    initial = get(service, "/api/v1/allocations")
    assert initial["revision"] == 0 and initial["source"] == "organisation configuration"
    assert {(a["region"], a["quarter"], a["channel"]): a["amount"] for a in initial["allocations"]} == {
        (region, quarter, "*"): f"{Decimal(amount):.2f}"
        for region, quarters in SCHEMA.config.allocations.items()
        for quarter, amount in quarters.items()
    }

    problem(put_allocations(service, [{"region": "EMEA", "quarter": "Q1", "amount": 1}], "emea"), 403)
    first = put_allocations(
        service,
        [
            {"region": "EMEA", "quarter": "Q1", "amount": "1,000,000.50"},
            {"region": "EMEA", "quarter": "Q1", "channel": "Events", "amount": 250000},
            {"region": "NA", "quarter": "Q4", "channel": "*", "amount": "0"},
        ],
    )
    assert first.status_code == 200, first.get_data(as_text=True)
    shown = get(service, "/api/v1/allocations")
    assert shown["revision"] == first.get_json()["revision"] >= 1
    assert shown["source"] == "api" and shown["set_by"] == "fiona"
    assert {(a["region"], a["quarter"], a["channel"]): a["cents"] for a in shown["allocations"]} == {
        ("EMEA", "Q1", "*"): 100000050,
        ("EMEA", "Q1", "Events"): 25000000,
        ("NA", "Q4", "*"): 0,
    }

    second = put_allocations(service, [{"region": "APAC", "quarter": "Q2", "amount": 12.5}])
    assert second.get_json()["revision"] == shown["revision"] + 1
    assert [(a["region"], a["amount"]) for a in get(service, "/api/v1/allocations")["allocations"]] == [
        ("APAC", "12.50")
    ]  # replaced, not merged

    bad = [
        {"region": "MARS", "quarter": "Q1", "amount": 1},
        {"region": "EMEA", "quarter": "Q5", "amount": 1},
        {"region": "EMEA", "quarter": "Q1", "channel": "Billboards", "amount": 1},
        {"region": "EMEA", "quarter": "Q2", "amount": -5},
        {"region": "EMEA", "quarter": "Q3", "amount": "lots"},
        {"region": "NA", "quarter": "Q1", "amount": 1},
        {"region": "NA", "quarter": "Q1", "channel": "*", "amount": 2},
        "EMEA Q1 100",
        {"region": "LATAM", "quarter": "Q4", "amount": 9},  # valid, but nothing is stored when any cell is not
    ]
    body = problem(put_allocations(service, bad), 422)
    assert [i["at"] for i in body["issues"]] == [
        "allocations[0].region",
        "allocations[1].quarter",
        "allocations[2].channel",
        "allocations[3].amount",
        "allocations[4].amount",
        "allocations[6]",
        "allocations[7]",
    ]
    assert "nothing was changed" in body["detail"]
    after = get(service, "/api/v1/allocations")
    assert after["revision"] == second.get_json()["revision"]
    assert [(a["region"], a["amount"]) for a in after["allocations"]] == [("APAC", "12.50")]

    problem(service.client.put("/api/v1/allocations", headers=auth(service.tokens["finance"]), json=[1]), 400)
    # A marketer reads the allocations of its own region only.
    put_allocations(
        service, [{"region": "EMEA", "quarter": "Q1", "amount": 5}, {"region": "NA", "quarter": "Q1", "amount": 7}]
    )
    assert [a["region"] for a in get(service, "/api/v1/allocations", "emea")["allocations"]] == ["EMEA"]


def test_an_over_allocated_plan_is_accepted_with_a_warning_and_approved_with_its_findings(service: Service) -> None:
    assert (
        put_allocations(
            service,
            [
                {"region": "EMEA", "quarter": "Q1", "amount": "1000"},
                {"region": "EMEA", "quarter": "Q1", "channel": "Events", "amount": "300"},
            ],
        ).status_code
        == 200
    )
    approved_plan(service, [line("S1", team="EMEA-SMB", channel="Events", m01="200")], team="EMEA-SMB")

    # 150 EUR is 162 USD: Events 200 + 162 = 362 (62 over 300); all channels 362 + 700 = 1062 (62 over 1000).
    plan = [
        line("E1", channel="Events", currency="EUR", m02="150"),
        line("E2", channel="Email", m03="700", m04="5000"),  # Q2 has no allocation
    ]
    response = submit(service.client, service.tokens["emea"], plan)
    assert response.status_code == 201, response.get_data(as_text=True)
    report = response.get_json()["report"]
    warnings = [i for i in report["issues"] if i["rule"] == "allocation.over"]
    assert report["errors"] == 0 and report["warnings"] == len(warnings) == 2
    assert all(w["severity"] == "warning" for w in warnings)
    # The marketer learns where the region would be over, not what the other team planned.
    assert {(w["region"], w["quarter"], w["channel"], w["allocation"]) for w in warnings} == {
        ("EMEA", "Q1", "*", "1000.00"),
        ("EMEA", "Q1", "Events", "300.00"),
    }
    assert not any("planned" in w or "over" in w or "362" in w["message"] for w in warnings)
    expected = {
        ("Q1", "*"): ("1000.00", "1062.00", "62.00"),
        ("Q1", "Events"): ("300.00", "362.00", "62.00"),
    }

    approval = decide(service.client, service.tokens["finance"], response.get_json()["id"], "approve", "ok")
    assert approval.status_code == 200, approval.get_data(as_text=True)
    findings = approval.get_json()["over_allocation"]
    assert {(f["region"], f["quarter"], f["channel"]) for f in findings} == {
        ("EMEA", "Q1", "*"),
        ("EMEA", "Q1", "Events"),
    }
    assert {(f["quarter"], f["channel"]): (f["allocation"], f["planned"], f["over"]) for f in findings} == expected
    assert approval.get_json()["master_version"] == 2

    # The rollup shows the same: allocations by channel on channel rows, by region on region rows.
    channels = by_key(get(service, "/api/v1/rollup?by=region,channel")["rows"], "channel", "period")
    assert (channels[("Events", "Q1")]["allocation"], channels[("Events", "Q1")]["remaining"]) == ("300.00", "-62.00")
    assert "allocation" not in channels[("Email", "Q1")]  # none set for Email
    regions = by_key(get(service, "/api/v1/rollup?by=region")["rows"], "period")
    assert (regions["Q1"]["amount"], regions["Q1"]["allocation"], regions["Q1"]["remaining"]) == (
        "1062.00",
        "1000.00",
        "-62.00",
    )
    assert "allocation" not in regions["Q2"]  # the revision in force has none for Q2


def test_with_refuse_an_over_allocated_plan_is_not_stored_nor_merged(service: Service, refusing: Any) -> None:
    finance = auth(service.tokens["finance"])
    put_allocations(service, [{"region": "EMEA", "quarter": "Q2", "amount": "1000"}])
    approved_plan(service, [line("S1", team="EMEA-SMB", m05="600")], team="EMEA-SMB")

    over = [line("E1", m04="300", m06="100.01")]  # 600 + 400.01: 0.01 over
    body = problem(submit(refusing, service.tokens["emea"], over), 422)
    assert [(i["rule"], i["quarter"], i["channel"], i["allocation"]) for i in body["issues"]] == [
        ("allocation.over", "Q2", "*", "1000.00")
    ]
    body = problem(submit(refusing, service.tokens["finance2"], over), 422)  # finance sees by how much
    assert [(i["rule"], i["planned"], i["over"]) for i in body["issues"]] == [("allocation.over", "1000.01", "0.01")]
    with service.store.reading() as session:
        assert session.scalar(select(func.count(Submission.id))) == 1  # only EMEA-SMB's

    exact = submit(refusing, service.tokens["emea"], [line("E1", m04="300", m06="100")])  # 1000: not over
    assert exact.status_code == 201, exact.get_data(as_text=True)
    assert not [i for i in exact.get_json()["report"]["issues"] if i["rule"] == "allocation.over"]

    put_allocations(service, [{"region": "EMEA", "quarter": "Q2", "amount": "950"}])  # cut after submission
    body = problem(decide(refusing, service.tokens["finance"], exact.get_json()["id"], "approve"), 409)
    assert [(i["rule"], i["planned"], i["allocation"], i["over"]) for i in body["issues"]] == [
        ("allocation.over", "1000.00", "950.00", "50.00")
    ]
    master = refusing.get("/api/v1/master", headers=finance).get_json()
    assert master["version"] == 1 and [t["team"] for t in master["teams"]] == ["EMEA-SMB"]
    status = refusing.get(f"/api/v1/submissions/{exact.get_json()['id']}", headers=finance).get_json()["status"]
    assert status == "submitted"


# --- actual spend ------------------------------------------------------------------------------------------------


def test_actuals_from_a_csv_match_by_line_id_and_campaign_code(service: Service) -> None:
    plan = [
        line("E1", code="EV-100", m01="1000", actual="1"),
        line("E2", code="WEB-200", m02="500", actual="2"),
        line("E3", code="SHARED", m01="100"),
        line("E4", code="SHARED", m02="200"),
        line("E5", code="SHARED", m03="300"),
        line("E6", code="MIX", currency="EUR", m01="100"),  # 108 USD at plan rates
        line("E7", code="MIX", m01="100"),
        line("E8", code="NOT-BILLED", m01="10", actual="3"),  # typed actual, but the finance system has none
        line("D1", code="DUP-A", m01="10"),
    ]
    approved_plan(service, plan)
    # The same line ID in another team's plan, stored before line IDs had to be unique across the master.
    stored_plan(service, [line("D1", team="EMEA-SMB", code="DUP-B", m01="10")], team="EMEA-SMB")
    before, typed = actuals_by_line(service)
    assert before["actual_source"] == "plans" and typed["E1"] == 100 and typed["E8"] == 300

    export = [
        ["Line ID", "Campaign code", "Amount"],
        ["E1", "", "1,234.56"],  # by line ID
        ["", "web-200", "99.99"],  # by campaign code (of one line), whatever its case
        ["", "SHARED", "100.01"],  # three lines: in proportion to their planned totals 100 : 200 : 300
        ["", "MIX", "208.00"],  # a USD line and an EUR line: weighed in one currency, 100 : 108
        ["NOPE-1", "", "5.00"],
        ["", "UNKNOWN-9", "7.50"],
        ["D1", "", "1.00"],  # two teams have a line D1: not guessed
        ["D1", "DUP-B", "2.00"],  # the campaign code says which
    ]
    problem(
        service.client.post(
            "/api/v1/actuals?filename=a.csv", headers=auth(service.tokens["emea"]), data=csv_bytes(export)
        ),
        403,
    )
    response = post_actuals(service, csv_bytes(export), "finance-export.csv")
    assert response.status_code == 201, response.get_data(as_text=True)
    report = response.get_json()
    assert report["filename"] == "finance-export.csv" and report["rows"] == 8 and report["matched"] == 5
    assert [(u["row"], u["line_id"], u["campaign_code"], u["amount"]) for u in report["unmatched"]] == [
        (6, "NOPE-1", "", "5.00"),
        (7, "", "UNKNOWN-9", "7.50"),
    ]
    assert [(s["row"], s["campaign_code"], s["lines"]) for s in report["spread"]] == [(4, "SHARED", 3), (5, "MIX", 2)]
    assert report["ambiguous"] == [{"row": 8, "line_id": "D1", "teams": ["EMEA-ENTERPRISE", "EMEA-SMB"]}]
    assert report["lines"] == 8

    after, actual = actuals_by_line(service)
    assert after["actual_source"] == "finance import" and after["actuals_import"] == report["id"]
    assert actual["E1"] == 123456 and actual["E2"] == 9999
    shared = {k: actual[k] for k in ("E3", "E4", "E5")}
    assert sum(shared.values()) == 10001  # the parts add up to the row exactly...
    for key, weight in (("E3", 100), ("E4", 200), ("E5", 300)):  # ...each within a cent of its exact share
        assert abs(shared[key] - Fraction(10001 * weight, 600)) < 1
    assert (actual["E6"], actual["E7"]) == (10800, 10000)  # 208 split 108 : 100; E6 holds 100.00 EUR
    assert actual["E8"] == 0  # the newest import is the whole actual spend
    assert actual["D1"] == 200  # both D1 lines together: only the row with the code counted
    assert report["total"] == fmt(123456 + 9999 + 10001 + 10800 + 10000 + 200) and report["currency"] == "USD"

    # A bad amount: 422 naming its cell, and the import in force stays the one before.
    broken = [*export[:4], ["E2", "", "12.3.4"], ["E1", "", "n/a"]]
    body = problem(post_actuals(service, csv_bytes(broken)), 422)
    assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("C5", "actuals.amount"), ("C6", "actuals.amount")]
    assert "nothing was imported" in body["detail"]
    body = problem(post_actuals(service, csv_bytes([["Line ID", "Cost"], ["E1", "5"]])), 422)
    assert "amount column" in body["detail"]
    problem(post_actuals(service, b""), 400)
    again, unchanged = actuals_by_line(service)
    assert again["actuals_import"] == report["id"] and unchanged == actual
    with service.store.reading() as session:
        assert session.scalar(select(func.count(ActualImport.id))) == 1


def test_actuals_from_an_xlsx_and_a_semicolon_csv_in_another_currency(service: Service) -> None:
    approved_plan(
        service,
        [
            line("E1", code="EV-1", m01="500"),
            line("E2", code="EV-2", currency="EUR", m01="500"),
            line("E3", code="EV-3", currency="GBP", m01="500"),
        ],
    )
    rows = [
        ["Line ID", "Campaign code", "Actual", "Currency"],
        ["E1", None, 250.5, "USD"],
        [None, "EV-2", 100, "EUR"],
        ["E3", None, "1,000.00", "USD"],  # 1000 USD on a GBP line: 787.40 GBP (1000 / 1.27)
        ["E1", None, -0.5, None],  # a credit, in the reporting currency
    ]
    response = post_actuals(service, xlsx_bytes(rows), "ledger.xlsx", multipart=True)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["filename"] == "ledger.xlsx" and response.get_json()["matched"] == 4
    _, actual = actuals_by_line(service)
    gbp = int((Decimal(100000) / RATES["GBP"]).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert gbp == 78740
    assert actual == {"E1": 25000, "E2": reporting(10000, "EUR"), "E3": reporting(gbp, "GBP")}

    rows[4][2] = "twelve"
    body = problem(post_actuals(service, xlsx_bytes(rows), "ledger.xlsx"), 422)
    assert [(i["sheet"], i["cell"]) for i in body["issues"]] == [("GL export", "C5")]
    rows[4][2], rows[4][3] = 1, "CHF"
    body = problem(post_actuals(service, xlsx_bytes(rows), "ledger.xlsx"), 422)
    assert [(i["cell"], i["rule"]) for i in body["issues"]] == [("D5", "actuals.currency")]
    assert actuals_by_line(service)[1] == actual

    # A semicolon CSV (raw body), amounts in EUR on USD lines, negatives as the ledger writes them.
    semicolon = csv_bytes(
        [
            ["Line ID", "Net amount", "Currency"],
            ["E1", "1,000.00", "EUR"],
            ["E1", "-€10.00", "EUR"],  # a symbol agrees with the currency column ("$" here is refused)
            ["E2", "(5)", "EUR"],
            ["E2", "2.50-", "EUR"],  # a credit as SAP writes it
        ],
        delimiter=";",
    )
    response = post_actuals(service, semicolon, "ledger.csv")
    assert response.status_code == 201, response.get_data(as_text=True)
    _, actual = actuals_by_line(service)
    assert actual == {"E1": reporting(100000, "EUR") + reporting(-1000, "EUR"), "E2": reporting(-750, "EUR"), "E3": 0}
    assert actual["E1"] == 106920


def test_a_retried_actuals_import_with_the_same_idempotency_key_imports_once(service: Service) -> None:
    approved_plan(service, [line("E1", m01="10")])
    data = csv_bytes([["Line ID", "Amount"], ["E1", "4.20"]])
    first = post_actuals(service, data, **{"Idempotency-Key": "actuals-2026-05"})
    again = post_actuals(service, data, **{"Idempotency-Key": "actuals-2026-05"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    with service.store.reading() as session:
        assert session.scalar(select(func.count(ActualImport.id))) == 1
    other = csv_bytes([["Line ID", "Amount"], ["E1", "4.30"]])
    assert (
        "different request"
        in problem(post_actuals(service, other, **{"Idempotency-Key": "actuals-2026-05"}), 422)["detail"]
    )
    assert post_actuals(service, other).get_json()["id"] == first.get_json()["id"] + 1


# --- locked months -----------------------------------------------------------------------------------------------


def template_of(service: Service, tmp_path: Path, team: str = "EMEA-ENTERPRISE") -> tuple[Path, Any]:
    response = service.client.get(f"/api/v1/templates/{team}.xlsx", headers=auth(service.tokens["emea"]))
    assert response.status_code == 200
    path = tmp_path / f"plan-{team}.xlsx"
    path.write_bytes(response.data)
    return path, openpyxl.load_workbook(path)


def row_of(book: Any, line_id: str) -> int:
    sheet = book["Plan"]
    [row] = [r for r in range(2, sheet.max_row + 1) if sheet.cell(r, 1).value == line_id]
    return row


def upload(service: Service, book: Any, path: Path) -> Any:
    book.save(path)
    form = {"team": "EMEA-ENTERPRISE", "file": (io.BytesIO(path.read_bytes()), path.name)}
    return service.client.post(
        "/api/v1/submissions", headers=auth(service.tokens["emea"]), data=form, content_type="multipart/form-data"
    )


def lock(service: Service, body: Any, action: str = "lock", who: str = "finance") -> Any:
    return service.client.post(f"/api/v1/periods/{action}", headers=auth(service.tokens[who]), json=body)


def test_locked_months_keep_their_approved_amounts(service: Service, tmp_path: Path) -> None:
    first = approved_plan(
        service,
        [
            line("E1", m01="100", m02="200", m04="400", m05="500"),
            line("E2", channel="Email", m01="50", m03="30"),
        ],
    )
    problem(lock(service, {"through": "m02"}, who="emea"), 403)
    answer = lock(service, {"through": "m02"})
    assert answer.status_code == 200
    assert [p["month"] for p in answer.get_json()["periods"] if p["locked"]] == ["m01", "m02"]
    lock(service, {"months": ["Q1"]})
    periods = get(service, "/api/v1/periods", "emea")["periods"]
    assert [(p["month"], p["label"], p["quarter"], p["locked"]) for p in periods[:4]] == [
        ("m01", "Feb 2026", "Q1", True),
        ("m02", "Mar 2026", "Q1", True),
        ("m03", "Apr 2026", "Q1", True),
        ("m04", "May 2026", "Q2", False),
    ]
    assert all(p["locked_at"] for p in periods[:3]) and not any(p["locked"] for p in periods[3:])
    for bad in ({"months": ["m13"]}, {"through": "Q5"}, {"months": []}, ["m01"]):
        problem(lock(service, bad), 400)

    # Changing a locked month of an approved line: 422 naming the cell of the uploaded sheet.
    path, book = template_of(service, tmp_path)
    row = row_of(book, "E2")
    book["Plan"][f"{SCHEMA['m01'].letter}{row}"] = 55
    body = problem(upload(service, book, path), 422)
    assert [(i["rule"], i["sheet"], i["cell"], i["line_id"]) for i in body["issues"]] == [
        ("period.locked", "Plan", f"{SCHEMA['m01'].letter}{row}", "E2")
    ]
    assert "50.00" in body["issues"][0]["message"] and "55.00" in body["issues"][0]["message"]

    # Changing only open months (the locked ones as approved) is accepted.
    path, book = template_of(service, tmp_path)
    book["Plan"][f"{SCHEMA['m05'].letter}{row_of(book, 'E1')}"] = 450
    accepted = upload(service, book, path)
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    second = accepted.get_json()["id"]

    # June (m05) locked after the submission: approving it would change June's approved spend.
    lock(service, {"months": ["Jun 2026"]})
    body = problem(decide(service.client, service.tokens["finance"], second, "approve"), 409)
    assert [(i["rule"], i["column"], i["line_id"]) for i in body["issues"]] == [("period.locked", "m05", "E1")]
    master = get(service, "/api/v1/master")
    assert master["version"] == 1 and master["teams"][0]["submission"] == first

    unlocked = lock(service, {"months": ["m05"]}, "unlock")
    assert [p["month"] for p in unlocked.get_json()["periods"] if p["locked"]] == ["m01", "m02", "m03"]
    approval = decide(service.client, service.tokens["finance"], second, "approve")
    assert approval.status_code == 200 and approval.get_json()["master_version"] == 2
    e1 = next(x for x in get(service, "/api/v1/master")["lines"] if x["line_id"] == "E1")
    assert (e1["m01"], e1["m05"]) == (10000, 45000)


# --- plan bases --------------------------------------------------------------------------------------------------


def test_a_plan_edited_from_an_older_plan_is_refused_with_what_changed(service: Service, tmp_path: Path) -> None:
    emea = service.tokens["emea"]
    v1 = [line("E1", m01="100"), line("E2", m02="200"), line("E3", m03="300")]
    first = approved_plan(service, v1)
    v2 = [line("E1", m01="150"), line("E3", m03="300"), line("E4", m04="400")]  # E1 changed, E2 out, E4 in
    second = submit(service.client, emea, v2, based_on={"submission": first}).get_json()["id"]
    parallel = submit(service.client, emea, [*v1, line("E9", m09="9")], based_on={"master_version": 1})
    assert parallel.status_code == 201 and parallel.get_json()["status"] == "submitted"
    assert decide(service.client, service.tokens["finance"], second, "approve").status_code == 200

    def check(changes: dict[str, Any]) -> None:
        assert (changes["from_submission"], changes["to_submission"]) == (first, second)
        assert [x["line_id"] for x in changes["added"]] == ["E4"]
        assert [x["line_id"] for x in changes["removed"]] == ["E2"]
        assert [(c["line_id"], c["fields"]) for c in changes["changed"]] == [
            ("E1", {"m01": {"from": 10000, "to": 15000}})
        ]

    late = problem(submit(service.client, emea, v1, based_on={"submission": first}), 409)
    assert (late["based_on_submission"], late["current_submission"]) == (first, second)
    check(late["changes"])
    problem(submit(service.client, emea, v1), 409)  # not naming a base at all

    stale = parallel.get_json()["id"]
    assert get(service, f"/api/v1/submissions/{stale}", "emea")["status"] == "stale"
    body = problem(decide(service.client, service.tokens["finance"], stale, "approve"), 409)
    assert body["current_status"] == "stale" and body["current_submission"] == second
    check(body["changes"])
    assert get(service, "/api/v1/master")["teams"][0]["submission"] == second

    # The team's template carries its base: edited and uploaded without naming one, it is accepted.
    path, book = template_of(service, tmp_path)
    assert book.defined_names[NAME_BASED_ON].attr_text == str(second)
    book["Plan"][f"{SCHEMA['m04'].letter}{row_of(book, 'E4')}"] = 410
    response = upload(service, book, path)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["status"] == "submitted"
    third = response.get_json()["id"]
    assert decide(service.client, service.tokens["finance"], third, "approve").status_code == 200
    e4 = next(x for x in get(service, "/api/v1/master")["lines"] if x["line_id"] == "E4")
    assert e4["m04"] == 41000
