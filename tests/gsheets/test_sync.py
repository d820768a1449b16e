"""Google Sheets end to end: real gspread and google-auth against the local Sheets API, through the service.

Create a team's plan sheet → fill it as a marketer would → pull (a bad cell reported at its
Google cell) → fix → pull → approve → push → read the master sheet back and compare it with
the service's master to the cent; then quotas and failures, with nothing lost or half-written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import gspread
import pytest
from sheets_standin import SheetsFake

from sheet_templates.cells import column_letter
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.integrations.google.client import GoogleSettings, client
from sync_service.platform.context import STORE
from tests.databases import upgrade
from tests.gsheets.sheet_helpers import INPUTS, SCHEMA, fill
from tests.sync_service.service_helpers import approved_plan, make_service
from tests.sync_service.spend_helpers import MONTHS, NAMES, PLAN, imported, line_figures

TEAM = "EMEA-ENTERPRISE"


@pytest.fixture
def fake() -> Iterator[SheetsFake]:
    with SheetsFake.serve() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plansheet.db'}"
    return request.getfixturevalue("postgres_url")


def google_settings(fake: SheetsFake) -> GoogleSettings:
    return GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01)


@pytest.fixture
def service(fake: SheetsFake, database_url: str):
    """The service configured for the fake Google, with a master spreadsheet shared with its service account."""
    gc = client(google_settings(fake))
    master = gc.create("Marketing master budget")
    upgrade(database_url)
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
            "GOOGLE_API_BASE": fake.base_url,
            "GOOGLE_BACKOFF": 0.01,
            "GOOGLE_MASTER_SPREADSHEET_ID": master.id,
            "JOB_ATTEMPTS": 1,  # a failed push is reported at once (retries have their own test)
        }
    )
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "maria": create_token(session, "maria", "marketer", [TEAM]),
            "sam": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "finance": create_token(session, "fiona", "finance"),
        }
    yield app, tokens, gc, master.id
    store.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_calls(fake: SheetsFake) -> list[Any]:
    """The Sheets and Drive API calls in the log (token exchanges are not API calls)."""
    return [r for r in fake.log if r.path != "/token"]


def test_create_fill_pull_approve_push_and_read_back_to_the_cent(service, fake: SheetsFake) -> None:
    app, tokens, gc, master_id = service
    api = app.test_client()

    fake.clear_log()
    created = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(tokens["finance"]), json={"editors": ["m@x.io"]})
    assert created.status_code == 201, created.get_json()
    sheet = created.get_json()
    assert sheet["requests"] == len(api_calls(fake)) == 3  # create, batchUpdate, one permission
    assert {p.get("emailAddress") for p in fake.permissions(sheet["spreadsheet_id"])} >= {"m@x.io"}
    assert api.get("/api/v1/gsheets/teams", headers=auth(tokens["maria"])).get_json()["sheets"][0]["team"] == TEAM
    assert api.get("/api/v1/gsheets/teams", headers=auth(tokens["sam"])).get_json()["sheets"] == []

    lines = sample_lines(SCHEMA, "EMEA", 20, seed=5)
    lines[10] = {**lines[10], "channel": "Billboards"}  # sheet row 12
    fill(gc, sheet["spreadsheet_id"], lines)

    fake.clear_log()
    refused = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert refused.status_code == 422, refused.get_json()
    assert len(api_calls(fake)) == 1  # one batched read
    [issue] = [i for i in refused.get_json()["issues"] if i["severity"] == "error"]
    assert (issue["sheet"], issue["cell"], issue["file"]) == ("Plan", f"{SCHEMA['channel'].letter}12", sheet["url"])
    assert api.get("/api/v1/submissions", headers=auth(tokens["finance"])).get_json()["submissions"] == []

    gc.open_by_key(sheet["spreadsheet_id"]).worksheet("Plan").update_acell(f"{SCHEMA['channel'].letter}12", "Events")
    pulled = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert pulled.status_code == 201, pulled.get_json()
    assert pulled.get_json()["source"] == "gsheets" and pulled.get_json()["lines"] == 20
    sam = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["sam"]))
    assert sam.status_code == 403

    approved = api.post(
        f"/api/v1/submissions/{pulled.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={}
    )
    assert approved.status_code == 200

    fake.clear_log()
    pushed = push(api, tokens["finance"])
    assert pushed["status"] == "succeeded", pushed
    assert pushed["result"]["requests"] == len(api_calls(fake)) <= 5
    assert all(
        json.loads(r.body)["valueInputOption"] == "RAW" for r in api_calls(fake) if "values:batchUpdate" in r.path
    )

    master = api.get("/api/v1/master", headers=auth(tokens["finance"])).get_json()
    grid = fake.grid(master_id, f"Master!A1:{column_letter(len(INPUTS) + 1)}{len(master['lines']) + 1}")
    header, rows = grid[0], grid[1:]
    assert header[:2] == ["Team", SCHEMA["line_id"].label]
    by_id = {row[1]: row for row in rows}
    assert set(by_id) == {line["line_id"] for line in master["lines"]}
    for line in master["lines"]:
        row = by_id[line["line_id"]]
        for name in ("m01", "m06", "m12", "committed", "actual"):
            assert round(float(row[1 + INPUTS.index(name)] or 0) * 100) == (line[name] or 0), (name, line["line_id"])
        assert row[1 + INPUTS.index("campaign")] == line["campaign"]
    titles = [s["properties"]["title"] for s in gc.http_client.fetch_sheet_metadata(master_id)["sheets"]]
    assert {"Master", "Rollup", "Variance"} <= set(titles) and not [t for t in titles if t.startswith("~new")]


def test_quota_answers_are_retried_and_a_failed_push_leaves_the_previous_master(service, fake: SheetsFake) -> None:
    app, tokens, gc, master_id = service
    api = app.test_client()
    sheet = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(tokens["finance"]), json={}).get_json()
    fill(gc, sheet["spreadsheet_id"], sample_lines(SCHEMA, "EMEA", 8, seed=1))

    # Two 429s, then the read goes through: the plan is submitted once.
    fake.inject(method="GET", path=r"values:batchGet", status=429, times=2)
    fake.clear_log()
    pulled = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert pulled.status_code == 201, pulled.get_json()
    assert [r.status for r in api_calls(fake)] == [429, 429, 200]
    api.post(f"/api/v1/submissions/{pulled.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={})
    first = push(api, tokens["finance"])
    assert first["status"] == "succeeded"
    before = fake.grid(master_id, "Master!A1:C20")

    # A new plan is approved, but the push fails in the middle (after the staging sheets were added).
    fill(gc, sheet["spreadsheet_id"], sample_lines(SCHEMA, "EMEA", 3, seed=2, id_prefix="NEW"))
    second = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"])).get_json()
    api.post(f"/api/v1/submissions/{second['id']}/approve", headers=auth(tokens["finance"]), json={})
    fake.inject(method="POST", path=r"values:batchUpdate", status=500, times=10)
    failed = push(api, tokens["finance"])
    assert failed["status"] == "failed" and "previous push" in failed["error"]
    assert fake.grid(master_id, "Master!A1:C20") == before  # readers still see the whole previous master

    # The next push replaces it whole and clears what the failed one left behind.
    fake.clear_injections()
    again = push(api, tokens["finance"])
    assert again["status"] == "succeeded", again
    after = fake.grid(master_id, "Master!A1:C40")
    assert len(after) - 1 == again["result"]["sheets"]["Master"] == 3  # the new plan replaced the old one
    assert {row[1] for row in after[1:]} == {
        line["line_id"] for line in sample_lines(SCHEMA, "EMEA", 3, seed=2, id_prefix="NEW")
    }
    titles = [s["properties"]["title"] for s in gc.http_client.fetch_sheet_metadata(master_id)["sheets"]]
    assert not [t for t in titles if t.startswith("~new")]


def test_a_sheet_that_is_not_the_teams_template_is_refused(service, fake: SheetsFake) -> None:
    app, tokens, gc, _ = service
    api = app.test_client()
    sheet = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(tokens["finance"]), json={}).get_json()
    # Someone edits the protected identity sheet (only possible for the service account, as here).
    gc.open_by_key(sheet["spreadsheet_id"]).worksheet("_plansheet").update_acell("B4", "NA-ENTERPRISE")
    refused = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert refused.status_code == 422 and "not 'EMEA-ENTERPRISE'" in refused.get_json()["detail"]


def test_without_credentials_the_service_says_how_to_configure_google(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    with app.extensions[STORE].transaction() as session:
        sync_teams(session, SCHEMA)
        token = create_token(session, "fiona", "finance")
    answer = app.test_client().post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(token), json={})
    assert answer.status_code == 503 and "PLANSHEET_GOOGLE_CREDENTIALS" in answer.get_json()["detail"]
    app.extensions[STORE].dispose()


def test_a_new_sheet_holds_the_approved_plan_and_a_plan_approved_elsewhere_is_not_overwritten(
    service, fake: SheetsFake, tmp_path: Path
) -> None:
    app, tokens, _, _ = service
    api = app.test_client()
    lines = [_json(line) for line in sample_lines(SCHEMA, "EMEA", 12, seed=4)]
    first = api.post("/api/v1/submissions", headers=auth(tokens["maria"]), json={"team": TEAM, "lines": lines})
    api.post(f"/api/v1/submissions/{first.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={})

    # The team moves to Google Sheets: its sheet starts with the approved plan, so pulling it unchanged is fine.
    sheet = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(tokens["finance"]), json={}).get_json()
    rows = fake.grid(sheet["spreadsheet_id"], f"Plan!A2:A{len(lines) + 5}")
    assert [r[0] for r in rows] == [line["line_id"] for line in lines]
    key = {**auth(tokens["maria"]), "Idempotency-Key": "pull-1"}
    pulled = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=key)  # the approved plan itself: unchanged
    assert pulled.status_code == 200, pulled.get_json()
    assert pulled.get_json()["unchanged"] is True and pulled.get_json()["id"] == first.get_json()["id"]
    again = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=key)  # a retried pull creates nothing new
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json()["id"] == pulled.get_json()["id"]

    # A plan approved from an upload after that is not in the sheet: a pull must not silently replace it.
    changed = [{**line, "m02": 123.45} for line in lines]
    other = api.post(
        "/api/v1/submissions",
        headers=auth(tokens["maria"]),
        json={"team": TEAM, "lines": changed, "based_on": {"submission": pulled.get_json()["id"]}},
    )
    api.post(f"/api/v1/submissions/{other.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={})
    conflict = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert conflict.status_code == 409
    assert {c["line_id"] for c in conflict.get_json()["changes"]["changed"]} == {line["line_id"] for line in lines}


def test_two_pushes_at_once_publish_one_whole_master(service, fake: SheetsFake) -> None:
    app, tokens, gc, master_id = service
    lines = [_json(line) for line in sample_lines(SCHEMA, "EMEA", 30, seed=8)]
    api = app.test_client()
    sid = api.post("/api/v1/submissions", headers=auth(tokens["maria"]), json={"team": TEAM, "lines": lines})
    api.post(f"/api/v1/submissions/{sid.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={})
    fake.inject(method="POST", path=r"values:batchUpdate", delay=0.5, times=2)

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: push(app.test_client(), tokens["finance"])["status"], range(2)))
    assert done == ["succeeded", "succeeded"]
    rows = fake.grid(master_id, "Master!A1:B100")[1:]
    assert sorted(r[1] for r in rows) == sorted(line["line_id"] for line in lines)
    titles = [s["properties"]["title"] for s in gc.http_client.fetch_sheet_metadata(master_id)["sheets"]]
    assert not [t for t in titles if t.startswith("~new")]


def test_an_approval_stands_when_the_push_after_it_cannot_reach_google(service, fake: SheetsFake) -> None:
    app, tokens, _, _ = service
    unreachable = {**fake.service_account_info(), "token_uri": "http://127.0.0.1:9/token"}
    app.config.update(GOOGLE_PUSH_ON_APPROVAL=True, GOOGLE_CREDENTIALS_JSON=json.dumps(unreachable))
    api = app.test_client()
    lines = [_json(line) for line in sample_lines(SCHEMA, "EMEA", 3, seed=1)]
    sid = api.post("/api/v1/submissions", headers=auth(tokens["maria"]), json={"team": TEAM, "lines": lines})
    approved = api.post(f"/api/v1/submissions/{sid.get_json()['id']}/approve", headers=auth(tokens["finance"]), json={})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    job = approved.get_json()["master_sheet"]["job"]
    after_approval = api.get(f"/api/v1/jobs/{job}", headers={**auth(tokens["finance"]), "Prefer": "wait=20"})
    assert after_approval.get_json()["status"] == "failed" and "sign-in" in after_approval.get_json()["error"]
    pushed = api.post("/api/v1/gsheets/master/push", headers={**auth(tokens["finance"]), "Prefer": "wait=20"}, json={})
    assert pushed.status_code == 200 and "sign-in" in pushed.get_json()["error"]
    assert "private_key" not in pushed.get_data(as_text=True)
    assert "private_key" not in after_approval.get_data(as_text=True)


def test_the_push_writes_the_spend_per_region_and_team_to_the_cent(fake: SheetsFake, database_url: str) -> None:
    """With POs and invoices imported, the master sheet's Spend tab is each region's and team's figures at the month
    being closed, worked out by test_spend from the rows sent."""
    gc = client(google_settings(fake))
    master_id = gc.create("Marketing master budget").id
    s = make_service(
        database_url,
        GOOGLE_CREDENTIALS_JSON=json.dumps(fake.service_account_info()),
        GOOGLE_API_BASE=fake.base_url,
        GOOGLE_BACKOFF=0.01,
        GOOGLE_MASTER_SPREADSHEET_ID=master_id,
        JOB_ATTEMPTS=1,
    )
    try:
        approved_plan(s, PLAN)
        assert push(s.client, s.tokens["finance"])["status"] == "succeeded"
        titles = [x["properties"]["title"] for x in gc.http_client.fetch_sheet_metadata(master_id)["sheets"]]
        assert "Spend" not in titles  # no PO imported yet
        imported(s)
        pushed = push(s.client, s.tokens["finance"])
        assert pushed["status"] == "succeeded", pushed
        assert "Spend" in pushed["result"]["sheets"]
        month = NAMES.index("m01")  # no month closed yet: m01 is the month being closed
        header, *grid = (
            gc.open_by_key(master_id)
            .worksheet("Spend")
            .get_all_values(value_render_option=gspread.utils.ValueRenderOption.unformatted)
        )
        labels = {
            "Planned": "plan",
            "Committed (open PO)": "committed",
            "Invoiced": "invoiced",
            f"Accrued (end of {MONTHS[month].label})": "accrued",
            "Remaining": "remaining",
        }
        assert header == ["By", "Name", *labels]
        got = {
            (r[0], r[1]): {labels[h]: round(Decimal(str(v)) * 100) for h, v in zip(header[2:], r[2:], strict=True)}
            for r in grid
            if r and r[0]
        }
        want: dict[tuple[str, str], dict[str, int]] = {}
        for x in PLAN:
            for name, cents in line_figures(x["line_id"], month).items():
                for key in (("Region", "EMEA"), ("Team", TEAM)):
                    want.setdefault(key, dict.fromkeys(labels.values(), 0))[name] += cents
        assert got == want
        assert want["Region", "EMEA"]["accrued"] > 0  # the month's accrual is in the comparison
    finally:
        s.store.dispose()


def push(api: Any, token: str) -> dict[str, Any]:
    """Ask for a push and wait for it: the job as it finished (202 queued, then 200 once it is done)."""
    answer = api.post("/api/v1/gsheets/master/push", headers={**auth(token), "Prefer": "wait=20"}, json={})
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/jobs/{answer.get_json()['id']}"
    return answer.get_json()


def _json(line: dict[str, Any]) -> dict[str, Any]:
    return {
        k: float(v) if isinstance(v, Decimal) else v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in line.items()
    }


def test_a_slow_answer_is_waited_for_then_given_up_and_the_read_retried(service, fake: SheetsFake) -> None:
    app, tokens, gc, _ = service
    api = app.test_client()
    sheet = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=auth(tokens["finance"]), json={}).get_json()
    fill(gc, sheet["spreadsheet_id"], sample_lines(SCHEMA, "EMEA", 5, seed=3))
    app.config.update(GOOGLE_TIMEOUT=1.0)  # only reads are repeated after a timeout, so the pull's read
    slow = fake.inject(method="GET", path=r"values:batchGet", delay=4.0, times=1)
    pulled = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert pulled.status_code == 201, pulled.get_json()
    assert slow.fired == 1 and pulled.get_json()["lines"] == 5
    submissions = api.get("/api/v1/submissions", headers=auth(tokens["finance"])).get_json()["submissions"]
    assert len(submissions) == 1  # the slow first read did not submit anything twice


def test_a_reforecast_sheet_shows_actuals_in_protected_closed_months_that_are_never_read(
    service, fake: SheetsFake
) -> None:
    app, tokens, gc, _ = service
    api = app.test_client()
    finance = auth(tokens["finance"])
    lines = sample_lines(SCHEMA, "EMEA", 4, seed=7)
    first = api.post("/api/v1/submissions", headers=auth(tokens["maria"]), json={"team": TEAM, "lines": [
        _json(line) for line in lines]})  # fmt: skip
    assert (
        api.post(f"/api/v1/submissions/{first.get_json()['id']}/approve", headers=finance, json={}).status_code == 200
    )
    booked = {(0, "m01"): "111.11", (1, "m02"): "222.22", (1, "m03"): "5"}
    export = "Line ID,Month,Amount,Currency\n" + "".join(
        f"{lines[k]['line_id']},{m},{amount},{lines[k]['currency']}\n" for (k, m), amount in booked.items()
    )
    imported = api.post(
        "/api/v1/actuals?filename=gl.csv", headers=finance, data=export.encode(), content_type="text/csv"
    )
    assert imported.status_code == 201, imported.get_json()
    cycle = api.post(
        "/api/v1/cycles", headers=finance, json={"name": "Q1 reforecast", "through": "m03", "deadline": "2027-04-20"}
    ).get_json()
    sheet = api.post(f"/api/v1/gsheets/teams/{TEAM}", headers=finance, json={}).get_json()
    sid = sheet["spreadsheet_id"]
    closed = ["m01", "m02", "m03"]
    grid = fake.grid(sid, f"Plan!A2:{column_letter(len(INPUTS))}{len(lines) + 1}")
    for k, line in enumerate(lines):
        for m in closed:  # the booked spend, in the line's currency
            shown = grid[k][SCHEMA[m].index - 1]
            assert Decimal(str(shown or 0)) == Decimal(booked.get((k, m), "0")), (k, m)
        assert Decimal(str(grid[k][SCHEMA["m04"].index - 1] or 0)) == (line["m04"] or 0)
    plan_sheet = next(
        s for s in gc.http_client.fetch_sheet_metadata(sid)["sheets"] if s["properties"]["title"] == "Plan"
    )
    columns = {
        p["range"]["startColumnIndex"] for p in plan_sheet.get("protectedRanges", []) if "closed" in p["description"]
    }
    assert columns == {SCHEMA[m].index - 1 for m in closed}
    # The marketer forecasts an open month and (as the sheet's owner could) types over a closed one.
    plan = gc.open_by_key(sid).worksheet("Plan")
    plan.update_acell(f"{SCHEMA['m04'].letter}2", 4321)
    plan.update_acell(f"{SCHEMA['m02'].letter}3", 99)
    pulled = api.post(f"/api/v1/gsheets/teams/{TEAM}/pull", headers=auth(tokens["maria"]))
    assert pulled.status_code == 201, pulled.get_json()
    assert pulled.get_json()["cycle"] == cycle["id"]
    notes = [i for i in pulled.get_json()["report"]["issues"] if i["rule"] == "period.closed"]
    assert [i["location"] for i in notes] == [f"Plan!{SCHEMA['m02'].letter}3"]
    stored = api.get("/api/v1/master", headers=finance).get_json()
    assert stored["master_version"] == 1  # not approved yet: the master still holds the first plan
    approved = api.post(f"/api/v1/submissions/{pulled.get_json()['id']}/approve", headers=finance, json={})
    assert approved.status_code == 200, approved.get_json()
    by_id = {x["line_id"]: x for x in api.get("/api/v1/master", headers=finance).get_json()["lines"]}
    for line in lines:
        for m in closed:  # the approved plan's amounts stay in the closed months
            assert Decimal(by_id[line["line_id"]][m] or 0) == (line[m] or 0) * 100, (line["line_id"], m)
    assert by_id[lines[0]["line_id"]]["m04"] == 432100


def test_next_years_push_carries_its_year_against_this_one(service, fake: SheetsFake) -> None:
    app, tokens, _, master_id = service
    api = app.test_client()
    following = SCHEMA.calendar.year + 1
    for year, schema in ((None, SCHEMA), (following, SCHEMA.for_year(following))):
        suffix = f"?year={year}" if year else ""
        lines = [_json(x) for x in sample_lines(schema, "EMEA", 5, seed=7)]
        sent = api.post(
            f"/api/v1/submissions{suffix}", headers=auth(tokens["maria"]), json={"team": TEAM, "lines": lines}
        )
        assert sent.status_code == 201, sent.get_json()
        decided = api.post(f"/api/v1/submissions/{sent.get_json()['id']}/approve", headers=auth(tokens["finance"]),
                           json={})  # fmt: skip
        assert decided.status_code == 200, decided.get_json()
    answer = api.post(f"/api/v1/gsheets/master/push?year={following}",
                      headers={**auth(tokens["finance"]), "Prefer": "wait=20"}, json={})  # fmt: skip
    assert answer.status_code == 200 and answer.get_json()["status"] == "succeeded", answer.get_json()
    yoy = api.get(f"/api/v1/year-over-year?year={following}&by=region&period=year", headers=auth(tokens["finance"]))
    [row] = yoy.get_json()["rows"]
    grid = fake.grid(master_id, "'Year over year'!A1:F2")
    assert grid[0][:3] == ["Region", f"FY{following} plan", f"FY{following - 1} plan"]
    assert grid[1][0] == "EMEA"
    assert [round(float(v) * 100) for v in grid[1][1:3]] == [row["cents"]["plan"], row["cents"]["last_plan"]]
