"""Results from the CRM and marketing automation: imports shaped like each preset, replacement, and the figures.

Expected figures are worked out here from the rows the test wrote (shares by largest remainder
over planned spend, money converted at the plan rate half away from zero), never read back
from the service. The exports carry the usual mess: a title above the header, thousands
separators, currency symbols, blank rows, totals and footer rows, dates as text.
"""

from __future__ import annotations

import datetime as dt
import io
from fractions import Fraction
from typing import Any

import openpyxl
import pytest

from sync_service.platform.storage import OutcomeImport
from tests.sync_service.http_helpers import auth
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, csv_bytes, get, line, post_actuals
from tests.sync_service.service_helpers import service as service

RATES = SCHEMA.config.plan_rates


def post(service: Service, data: bytes, query: str = "", who: str = "finance", filename: str = "export.csv") -> Any:
    sep = "&" if query else ""
    return service.client.post(
        f"/api/v1/outcomes?filename={filename}{sep}{query}",
        headers=auth(service.tokens[who]),
        data=data,
        content_type="application/octet-stream",
    )


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def half_away(value: Fraction) -> int:
    whole = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)
    return whole if value >= 0 else -whole


def to_reporting(cents: int, currency: str) -> int:
    return half_away(Fraction(cents) * Fraction(RATES[currency]))


def performance(service: Service, by: str = "region", period: str = "quarter", who: str = "finance") -> dict:
    body = get(service, f"/api/v1/performance?by={by}&period={period}", who)
    return {(*(r[d] for d in body["by"]), r["period"]): r["measures"] for r in body["rows"]}


def plan(service: Service) -> None:
    """Two EMEA lines sharing a Salesforce campaign ID (planned 3:1), one NA line, all in Q1-Q2."""
    approved_plan(
        service,
        [
            line("E-1", code="701SHARED", currency="EUR", m01="3000", m04="3000"),
            line("E-2", code="701SHARED", channel="Webinars", m02="2000"),
            line("E-3", code="701E3", channel="Paid Search", m03="500"),
        ],
    )
    approved_plan(
        service, [line("N-1", team="NA-ENTERPRISE", code="701NA", channel="ABM", m01="1000")], "NA-ENTERPRISE"
    )


SALESFORCE = [
    ["Campaign results by month", "", "", "", "", "", "", ""],
    ["", "", "", "", "", "", "", ""],
    [
        "Campaign Name",
        "Campaign ID",
        "Month",
        "Leads in Campaign",
        "Converted Leads in Campaign",
        "Opportunities in Campaign",
        "Won Opportunities in Campaign",
        "Value Opportunities in Campaign",
        "Value Won Opportunities in Campaign",
        "Campaign Currency",
    ],
    ["Shared", "701SHARED", "2/15/2026", "1,001", "40", "12", "3", "$250,000.01", "$90,000.00", "USD"],
    ["", "", "", "", "", "", "", "", "", ""],
    ["Shared", "701SHARED", "3/20/2026", "500", "10", "4", "1", "100,000", "10,000", "USD"],
    ["NA ABM", "701NA", "2/28/2026", "77", "7", "2", "0", "€30,000.50", "0", ""],
    ["Unknown", "701NOPE", "2/28/2026", "5", "1", "0", "0", "0", "0", "USD"],
    ["Grand Totals (4 records)", "", "", "1,583", "58", "18", "4", "$380,000.51", "$100,000.00", ""],
    ["Confidential Information - Do Not Distribute", "", "", "", "", "", "", "", "", ""],
]


def test_a_salesforce_report_is_read_with_its_mess_and_shared_ids_are_split_by_planned_spend(service: Service) -> None:
    plan(service)
    answer = post(service, csv_bytes(SALESFORCE))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    report = answer.get_json()
    assert report["preset"] == "salesforce" and report["source"] == "salesforce"
    assert report["months"] == ["m01", "m02"] and report["rows"] == 4 and report["matched"] == 3
    assert [u["crm_campaign_id"] for u in report["unmatched"]] == ["701NOPE"] and report["unmatched_rows"] == 1
    assert {s["reason"] for s in report["skipped"]} == {"a totals row", "no figures"}
    assert "mqls" not in report["metrics"] and "leads" in report["metrics"]

    # E-1 plans 6000 EUR = 6480 USD, E-2 2000 USD: 1001 leads split 6480:2000 in hundredths, largest remainder.
    w1, w2 = to_reporting(300000, "EUR") + to_reporting(300000, "EUR"), 200000
    rows = performance(service, by="channel", period="month")
    share = Fraction(100100 * w1, w1 + w2)
    e1 = int(share) + (
        1 if share - int(share) >= Fraction(100100 * w2, w1 + w2) - int(Fraction(100100 * w2, w1 + w2)) else 0
    )
    assert rows["Events", "m01"]["leads"]["actual"] + rows["Webinars", "m01"]["leads"]["actual"] == 1001
    assert round(rows["Events", "m01"]["leads"]["actual"] * 100) == e1
    # Money: the pipeline split in USD cents, then converted (USD to USD) per part.
    pipeline = (
        rows["Events", "m01"]["pipeline"]["cents"]["actual"] + rows["Webinars", "m01"]["pipeline"]["cents"]["actual"]
    )
    assert pipeline == 25_000_001
    # The euro symbol says the NA row's currency: converted at the plan rate.
    assert rows["ABM", "m01"]["pipeline"]["cents"]["actual"] == to_reporting(3_000_050, "EUR")
    # MQLs have no column: no data, never zero; m03 has no import: no data.
    assert rows["ABM", "m01"]["mqls"]["actual"] is None
    assert (
        rows["ABM", "m03"]["leads"]["actual"] is None
        and "no results imported" in rows["ABM", "m03"]["leads"]["notes"][0]
    )
    assert rows["ABM", "m01"]["won"]["actual"] == 0  # imported as zero: zero


def test_the_same_export_twice_changes_nothing_and_a_newer_one_replaces_its_months(service: Service) -> None:
    plan(service)
    first = post(service, csv_bytes(SALESFORCE))
    assert first.status_code == 201
    again = post(service, csv_bytes(SALESFORCE))
    assert (
        again.status_code == 200 and again.get_json()["unchanged"] and again.get_json()["id"] == first.get_json()["id"]
    )
    with service.store.reading() as session:
        assert session.query(OutcomeImport).count() == 1
    # A corrected export of February only: February's figures replaced, March's kept from the first import.
    corrected = [SALESFORCE[2], ["Shared", "701SHARED", "2026-02-01", "2000", "0", "0", "0", "0", "0", "USD"]]
    newer = post(service, csv_bytes(corrected))
    assert newer.status_code == 201, newer.get_data(as_text=True)
    assert newer.get_json()["replaces"] == [{"import": first.get_json()["id"], "months": ["m01"]}]
    rows = performance(service, by="region", period="month")
    assert rows["EMEA", "m01"]["leads"]["actual"] == 2000
    assert rows["EMEA", "m02"]["leads"]["actual"] == 500
    assert rows["NA", "m01"]["leads"]["actual"] is None or rows["NA", "m01"]["leads"]["actual"] == 0
    # Another source for the same month adds to it rather than replacing it.
    other = [["Campaign code", "Month", "Leads"], ["701E3", "m01", "5"]]
    assert post(service, csv_bytes(other), "source=webinar-tool").status_code == 201
    assert performance(service, by="region", period="month")["EMEA", "m01"]["leads"]["actual"] == 2005
    listed = get(service, "/api/v1/outcomes")["imports"]
    assert [i["in_force_months"] for i in listed] == [["m01"], ["m01"], ["m02"]]
    assert listed[-1]["imported_by"] == "fiona"


def test_a_bad_cell_is_refused_naming_its_cell_and_nothing_is_imported(service: Service) -> None:
    plan(service)
    bad = [row[:] for row in SALESFORCE]
    bad[5][3] = "lots"
    bad[6][2] = "13/13/2026"
    answer = post(service, csv_bytes(bad))
    assert answer.status_code == 422
    issues = {i["cell"]: i for i in answer.get_json()["issues"]}
    assert issues["D6"]["rule"] == "outcomes.number" and "'lots'" in issues["D6"]["message"]
    assert issues["C7"]["rule"] == "outcomes.month"
    with service.store.reading() as session:
        assert session.query(OutcomeImport).count() == 0
    assert performance(service)["EMEA", "Q1"]["leads"]["actual"] is None


def test_hubspot_xlsx_with_real_dates_and_marketo_fractions_with_one_month_for_the_file(service: Service) -> None:
    plan(service)
    hubspot = xlsx(
        [
            [
                "Campaign name",
                "Campaign ID",
                "Date",
                "New contacts (first touch)",
                "Marketing qualified leads",
                "Deals created",
                "Closed won deals",
                "Revenue",
            ],
            ["Shared", "701SHARED", dt.datetime(2026, 4, 3), 80, 20, 4, 1, 12000.5],
        ]
    )
    answer = post(service, hubspot, filename="hubspot.xlsx")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["preset"] == "hubspot" and answer.get_json()["months"] == ["m03"]
    marketo = csv_bytes(
        [
            ["Program Name", "Channel", "Members", "New Names", "Success", "Opportunities Created", "Pipeline Created"],
            ["Campaign E-3", "Paid Search", "400", "10.5", "3.25", "0.5", "1,000.00"],
        ]
    )
    answer = post(service, marketo, "preset=marketo&month=Apr 2026")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    rows = performance(service, by="channel", period="month")
    assert rows["Paid Search", "m03"]["leads"]["actual"] == 10.5  # matched by the campaign's name
    assert rows["Paid Search", "m03"]["mqls"]["actual"] == 3.25
    # Two sources in April: HubSpot's MQLs for the shared campaign, Marketo's for E-3.
    assert rows["Paid Search", "m03"]["lead_to_mql"]["actual"] == pytest.approx(3.25 / 10.5, abs=1e-6)


def test_a_column_mapping_reads_any_export_and_names_a_missing_column(service: Service) -> None:
    plan(service)
    export = csv_bytes([["Code", "Period", "Net new", "Pipe"], ["701E3", "2026-03", "9", "50"]])
    mapping = '{"campaign_code": "Code", "month": "Period", "leads": "Net new", "pipeline": "Pipe"}'
    answer = post(service, export, f"mapping={mapping}&source=partner-portal")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert performance(service, by="channel", period="month")["Paid Search", "m02"]["leads"]["actual"] == 9
    missing = post(service, export, '&mapping={"leads": "Leads count", "campaign_code": "Code"}')
    assert missing.status_code == 422 and "'Leads count'" in missing.get_json()["detail"]


def test_a_push_of_json_rows_names_the_bad_field(service: Service) -> None:
    plan(service)
    body = {"source": "crm-sync", "rows": [{"line_id": "E-3", "month": "m02", "leads": 3, "revenue": "1,200.00"}]}
    answer = service.client.post("/api/v1/outcomes:push", headers=auth(service.tokens["finance"]), json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["metrics"] == ["leads", "revenue"]
    body["rows"].append({"line_id": "E-3", "month": "m02", "leads": -1})
    refused = service.client.post("/api/v1/outcomes:push", headers=auth(service.tokens["finance"]), json=body)
    assert refused.status_code == 422
    assert refused.get_json()["issues"][0]["cell"] == "rows[1].leads"


def test_unit_costs_use_the_spend_of_the_covered_months_when_the_actuals_have_months(service: Service) -> None:
    plan(service)
    assert post(service, csv_bytes(SALESFORCE)).status_code == 201
    no_months = csv_bytes([["Line ID", "Amount", "Currency"], ["E-3", "400", "USD"]])
    assert post_actuals(service, no_months).status_code == 201
    rows = performance(service, by="channel", period="quarter")
    figure = rows["Paid Search", "Q1"]["cost_per_lead"]
    assert figure["actual"] is None and any("no months" in n for n in figure["notes"])
    year = performance(service, by="channel", period="year")
    assert year["Paid Search", "FY2027"]["spend"]["actual"] == "400.00"

    by_month = csv_bytes(
        [
            ["Line ID", "Posting date", "Amount", "Currency"],
            ["E-1", "2026-02-10", "1000", "EUR"],
            ["E-1", "2026-05-01", "500", "EUR"],
            ["E-2", "2026-03-02", "300", "USD"],
        ]
    )
    assert post_actuals(service, by_month).status_code == 201
    rows = performance(service, by="region", period="quarter")
    emea = rows["EMEA", "Q1"]
    assert emea["spend"]["cents"]["actual"] == to_reporting(100000, "EUR") + 30000
    # Leads are covered in m01 and m02 only: the spend of those two months over their leads.
    spend = to_reporting(100000, "EUR") + 30000
    assert emea["cost_per_lead"]["cents"]["actual"] == half_away(Fraction(spend * 100, (1001 + 500) * 100))
    assert emea["cost_per_lead"]["months"] == ["m01", "m02"]
    # The Q2 month (May) is the EUR line's own month, converted so the months add up to the line.
    assert rows["EMEA", "Q2"]["spend"]["cents"]["actual"] == to_reporting(150000, "EUR") - to_reporting(100000, "EUR")


def test_targets_apply_by_region_and_a_marketer_sees_their_teams_only(service: Service) -> None:
    plan(service)
    assert post(service, csv_bytes(SALESFORCE)).status_code == 201
    rows = performance(service, by="region", period="quarter")
    leads = rows["EMEA", "Q1"]["leads"]
    assert leads["target"] == float(SCHEMA.config.target("EMEA", "Q1", "leads"))
    assert leads["vs_target"] == pytest.approx(leads["actual"] - leads["target"])
    allocation = int(SCHEMA.config.allocation("EMEA", "Q1") * 100)
    target_cpl = half_away(Fraction(allocation * 100, int(SCHEMA.config.target("EMEA", "Q1", "leads")) * 100))
    assert rows["EMEA", "Q1"]["cost_per_lead"]["cents"]["target"] == target_cpl
    by_channel = performance(service, by="region,channel", period="quarter")
    assert by_channel["EMEA", "Events", "Q1"]["leads"]["target"] is None
    assert "group by region alone" in by_channel["EMEA", "Events", "Q1"]["leads"]["notes"][-1]
    # Expected leads fall into quarters by planned spend (E-1 plans half in Q1, half in Q2).
    mine = performance(service, by="region", period="year", who="na")
    assert set(mine) == {("NA", "FY2027")}
    assert any("your teams' only" in n for n in mine["NA", "FY2027"]["leads"]["notes"])


def test_a_marketer_cannot_import_results(service: Service) -> None:
    answer = post(service, csv_bytes(SALESFORCE), who="na")
    assert answer.status_code == 403


def test_a_period_column_reading_ytd_is_spend_to_date_and_ytd_among_months_is_refused(service: Service) -> None:
    plan(service)
    to_date = csv_bytes([["Posting period", "Line ID", "Amount", "Currency"], ["YTD", "E-3", "400", "USD"]])
    answer = post_actuals(service, to_date)
    assert answer.status_code == 201, answer.get_json()
    year = performance(service, by="channel", period="year")
    assert year["Paid Search", "FY2027"]["spend"]["actual"] == "400.00"
    assert get(service, "/api/v1/performance?by=region")["actual_spend_by_month"] is False

    mixed = csv_bytes(
        [
            ["Posting period", "Line ID", "Amount", "Currency"],
            ["Apr 2026", "E-3", "100", "USD"],
            ["YTD", "E-3", "1", "USD"],
        ]
    )
    answer = post_actuals(service, mixed)
    assert answer.status_code == 422
    (issue,) = answer.get_json()["issues"]
    assert (issue["cell"], issue["rule"]) == ("A3", "actuals.month") and "to-date" in issue["message"]
    assert performance(service, by="channel", period="year")["Paid Search", "FY2027"]["spend"]["actual"] == "400.00"

    # Results with a Period of YTD throughout carry no month: the export must say which one it is.
    results = csv_bytes([["Campaign ID", "Period", "Leads in Campaign"], ["701E3", "YTD", "10"]])
    answer = post(service, results, "preset=salesforce")
    assert answer.status_code == 422 and "YTD is not a month" in answer.get_json()["detail"]
    assert post(service, results, "preset=salesforce&month=m03").status_code == 201
    assert performance(service, by="channel", period="year")["Paid Search", "FY2027"]["leads"]["actual"] == 10.0
