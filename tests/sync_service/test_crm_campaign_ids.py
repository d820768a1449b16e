"""Results matched by the CRM's own campaign id: a plan line may carry it, and the report says which key matched.

Salesforce names a campaign by its Campaign ID, 15 characters (case-sensitive) or the 18-character
form whose last three encode the capitals, so that case-insensitive tools keep it. A plan line
carries either form in its *CRM campaign ID* column; results match a line by line ID, then CRM
campaign ID, then campaign code, then campaign name.
"""

from __future__ import annotations

from sync_service.results.outcomes import salesforce_id
from tests.sync_service.http_helpers import auth
from tests.sync_service.service_helpers import SCHEMA, Service, approved_plan, csv_bytes, get, line
from tests.sync_service.service_helpers import service as service

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def eighteen(fifteen: str) -> str:
    """Salesforce's 18-character form of a 15-character ID, worked out here from Salesforce's published rule."""
    suffix = ""
    for k in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(fifteen[k : k + 5]) if ch.isupper())
        suffix += _ALPHABET[bits]
    return fifteen + suffix


EVENTS, WEBINARS = "7015e00000AbCdE", "7015e00000xYz12"
REPORT = [
    ["Campaign Name", "Campaign ID", "Month", "Leads in Campaign", "Actual Cost in Campaign", "ROI"],
    ["Summit (renamed in the CRM)", eighteen(EVENTS), "2026-02-15", "120", "5,000.00", "3.2"],
    ["Webinar series", eighteen(WEBINARS).upper(), "2026-03-10", "40", "1,000.00", "1.1"],  # a tool upper-cased it
    ["Content hub", "CODE-3", "2026-03-10", "7", "0", "0"],  # an ID column holding the plan's own code
    ["Campaign E-4", "", "2026-03-10", "3", "0", "0"],  # no ID: the campaign's name
    ["Lookalike", eighteen("7015e00000AbCdF"), "2026-03-10", "9", "0", "0"],  # no line carries it
]


def test_salesforce_ids_in_either_form_name_one_campaign() -> None:
    assert salesforce_id(eighteen(EVENTS)) == EVENTS == salesforce_id(EVENTS)
    assert salesforce_id(eighteen(EVENTS).lower()) == EVENTS  # the case comes back from the last three characters
    assert salesforce_id(EVENTS.lower()) != EVENTS  # a 15-character ID is case-sensitive
    assert salesforce_id("not-an-id") is None


def test_results_match_by_crm_campaign_id_then_code_then_name_and_the_report_says_which(service: Service) -> None:
    approved_plan(
        service,
        [
            line("E-1", crm=EVENTS, m01="1000"),
            line("E-2", crm=eighteen(WEBINARS), channel="Webinars", m02="500"),
            line("E-3", code="CODE-3", channel="Content", m02="500"),
            line("E-4", channel="Paid Search", m02="500"),
        ],
    )
    answer = service.client.post("/api/v1/outcomes?filename=roi.csv", headers=auth(service.tokens["finance"]),
                                 data=csv_bytes(REPORT), content_type="text/csv")  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    report = answer.get_json()
    assert report["preset"] == "salesforce"
    assert report["matched_by"] == {"crm_campaign_id": 2, "campaign_code": 1, "campaign": 1}
    assert [(r["row"], r["by"]) for r in report["matched_rows"]] == [
        (2, "crm_campaign_id"), (3, "crm_campaign_id"), (4, "campaign_code"), (5, "campaign"),
    ]  # fmt: skip
    assert [u["row"] for u in report["unmatched"]] == [6]
    body = get(service, "/api/v1/performance?by=channel&period=year")
    leads = {r["channel"]: r["measures"]["leads"]["actual"] for r in body["rows"]}
    assert leads == {"Events": 120, "Webinars": 40, "Content": 7, "Paid Search": 3}
    # The CRM's own ROI is not silently dropped: the answer says why it is not read. Its cost is read as the CRM's.
    not_read = {c["column"]: c["why"] for c in report["read_by"]["columns_not_read"]}
    assert set(not_read) == {"ROI"} and "from finance's spend" in not_read["ROI"]
    assert "crm_cost" in report["metrics"]


def test_the_crm_campaign_id_is_a_column_of_the_plan_after_the_campaign_code() -> None:
    names = [c.name for c in SCHEMA.columns]
    assert names[names.index("campaign_code") + 1] == "crm_campaign_id"
    assert SCHEMA["crm_campaign_id"].label == "CRM campaign ID"


def test_the_crms_cost_is_shown_beside_finances_actual_spend_never_instead_with_the_difference(
    service: Service,
) -> None:
    approved_plan(service, [line("E-1", crm=EVENTS, m01="1000", m02="1000"), line("E-2", channel="Webinars", m01="10")])
    finance = auth(service.tokens["finance"])
    export = b"Line ID,Month,Amount,Currency\nE-1,m01,800,USD\nE-1,m02,900,USD\nE-2,m01,10,USD\n"
    assert service.client.post("/api/v1/actuals?filename=gl.csv", headers=finance, data=export,
                               content_type="text/csv").status_code == 201  # fmt: skip
    report = [
        ["Campaign Name", "Campaign ID", "Month", "Leads in Campaign", "Value Won Opportunities in Campaign",
         "Actual Cost in Campaign"],
        ["Summit", eighteen(EVENTS), "2026-02-15", "10", "5,000.00", "750.00"],
        ["Summit", eighteen(EVENTS), "2026-03-15", "10", "0", "1,000.00"],
    ]  # fmt: skip
    answer = service.client.post("/api/v1/outcomes?filename=roi.csv", headers=finance, data=csv_bytes(report),
                                 content_type="text/csv")  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = get(service, "/api/v1/performance?by=channel&period=year")
    events = next(r["measures"] for r in body["rows"] if r["channel"] == "Events")
    assert events["spend"]["cents"]["actual"] == 170000  # finance's, never the CRM's
    assert events["crm_cost"]["cents"]["actual"] == 175000  # the CRM's own record, beside it
    assert events["cost_difference"]["cents"]["actual"] == 5000  # the CRM records 50.00 more
    assert events["roi"]["actual"] == round((500000 - 170000) / 170000, 6)  # Salesforce's ROI on finance's spend
    cell = service.client.post("/api/v1/functions:batch", headers=finance, json={"calls": [
        {"name": "PS_RESULT", "args": [[["cost_difference"]], [["EMEA"]], [["FY"]], [["Events"]]]},
    ]}).get_json()["results"][0]  # fmt: skip
    assert cell["result"][0][0] == 50.0
