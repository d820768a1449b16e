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
    # The CRM's own cost and ROI are not silently dropped: the answer says why they are not read.
    not_read = {c["column"]: c["why"] for c in report["read_by"]["columns_not_read"]}
    assert "actual spend is finance's" in not_read["Actual Cost in Campaign"] and "ROI" in not_read


def test_the_crm_campaign_id_is_a_column_of_the_plan_after_the_campaign_code() -> None:
    names = [c.name for c in SCHEMA.columns]
    assert names[names.index("campaign_code") + 1] == "crm_campaign_id"
    assert SCHEMA["crm_campaign_id"].label == "CRM campaign ID"
