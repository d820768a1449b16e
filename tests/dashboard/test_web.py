"""The dashboard through Flask's test client: login, CSRF, security headers, scoping, and an approval by form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from tests.dashboard.web_helpers import PASSWORD, csrf, login
from tests.sync_service.live_server import as_json

SCHEMA = build_schema(load_config())


@pytest.fixture
def dashboard(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "PLAN_DEADLINE": "2026-12-15"})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, SCHEMA)
        tokens = {
            "maria": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "sam": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "fiona": create_token(session, "fiona", "finance"),
        }
        for name in tokens:
            set_password(session, name, PASSWORD)
    yield app, tokens
    store.dispose()


def submit(app: Any, token: str, team: str, n: int = 8, seed: int = 1) -> int:
    lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], n, seed=seed)]
    answer = app.test_client().post(
        "/api/v1/submissions", headers={"Authorization": f"Bearer {token}"}, json={"team": team, "lines": lines}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_pages_need_a_login_and_a_wrong_password_is_refused(dashboard) -> None:
    app, _ = dashboard
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/login")
    refused = login(client, "fiona", "wrong password!")
    assert refused.status_code == 401 and "do not match" in refused.get_data(as_text=True)
    assert login(client, "nobody", PASSWORD).status_code == 401
    assert login(client, "fiona").status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and "EMEA Enterprise" in page.get_data(as_text=True)
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in page.headers
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_finance_approves_by_form_and_a_form_without_its_token_is_refused(dashboard) -> None:
    app, tokens = dashboard
    sid = submit(app, tokens["maria"], "EMEA-ENTERPRISE")
    client = app.test_client()
    login(client, "fiona")
    page = client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "8 lines added" in page and 'value="approve"' in page
    forged = client.post(f"/submissions/{sid}/decide", data={"action": "approve"})  # no CSRF token
    assert forged.status_code == 400
    assert (
        client.get("/api/v1/master", headers={"Authorization": f"Bearer {tokens['fiona']}"}).get_json()["version"] == 0
    )
    done = client.post(f"/submissions/{sid}/decide", data={"action": "approve", "csrf_token": csrf(page)})
    assert done.status_code == 302
    after = client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "approved" in after and "Approved by fiona" in after
    master = client.get("/master").get_data(as_text=True)
    assert "<svg" in master and "EMEA" in master
    # the page's only script is the dashboard's own file (tables enhanced where marked); nothing inline or foreign
    assert re.findall(r"<script[^>]*>", master) == ['<script src="/static/tables.js" defer>']


def test_a_marketer_sees_only_their_teams(dashboard) -> None:
    app, tokens = dashboard
    emea = submit(app, tokens["maria"], "EMEA-ENTERPRISE")
    na = submit(app, tokens["sam"], "NA-ENTERPRISE", seed=2)
    client = app.test_client()
    login(client, "maria")
    status = client.get("/").get_data(as_text=True)
    assert "EMEA Enterprise" in status and "NA Enterprise" not in status
    assert client.get(f"/submissions/{emea}").status_code == 200
    assert client.get(f"/submissions/{na}").status_code == 404
    assert client.get("/teams/NA-ENTERPRISE").status_code == 404
    assert client.get("/download/template/NA-ENTERPRISE.xlsx").status_code == 404
    assert 'value="approve"' not in client.get(f"/submissions/{emea}").get_data(as_text=True)
    page = client.get(f"/submissions/{emea}").get_data(as_text=True)
    refused = client.post(f"/submissions/{emea}/decide", data={"action": "approve", "csrf_token": csrf(page)})
    assert refused.status_code == 302  # back to the page, with the refusal shown
    assert "only finance" in client.get(f"/submissions/{emea}").get_data(as_text=True)


def test_a_login_only_returns_to_a_page_of_this_site(dashboard) -> None:
    app, _ = dashboard
    targets = ["/master", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "https://x.io/"]
    for target in targets:
        answer = login(app.test_client(), "fiona", target=target)
        expected = "/master" if target == "/master" else "/"
        assert answer.status_code == 302 and answer.headers["Location"] == expected, repr(target)
    assert app.test_client().post("/login", data={"name": "fiona", "password": PASSWORD}).status_code == 400


def test_a_session_ends_with_a_new_password_and_works_on_every_worker(dashboard, tmp_path: Path) -> None:
    app, _ = dashboard
    client = app.test_client()
    login(client, "maria")
    assert client.get("/").status_code == 200
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True})  # a second worker
    other_client = other.test_client()
    with app.test_request_context():
        cookie = client.get_cookie("session")
    other_client.set_cookie("session", cookie.value)
    assert other_client.get("/").status_code == 200  # signed with the key the workers share
    with app.extensions[STORE].transaction() as session:
        set_password(session, "maria", "a brand new password")
    assert client.get("/").status_code == 302  # the old password's session is over
    other.extensions[STORE].dispose()


def test_plan_vs_actual_shows_spend_to_date_pacing_and_forecast_by_region(dashboard) -> None:
    import datetime as dt

    from addin.forecast import closed_months

    app, tokens = dashboard
    lines = [
        {**as_json(x), "currency": "USD"} for x in sample_lines(SCHEMA, "EMEA", 6, seed=5)
    ]  # USD: no conversion to follow
    api = app.test_client()
    sid = api.post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {tokens['maria']}"},
        json={"team": "EMEA-ENTERPRISE", "lines": lines},
    ).get_json()["id"]
    api.post(f"/api/v1/submissions/{sid}/approve", headers={"Authorization": f"Bearer {tokens['fiona']}"}, json={})
    client = app.test_client()
    login(client, "fiona")
    page = client.get("/actuals").get_data(as_text=True)
    closed = closed_months(SCHEMA.calendar, dt.date.today())
    months = [c.name for c in SCHEMA.month_columns]
    cents = [[round((line.get(m) or 0) * 100) for m in months] for line in lines]
    actual = [round((line.get("actual") or 0) * 100) for line in lines]
    to_date = sum(sum(row[:closed]) for row in cents)
    run_rate = sum((a * 24 + closed) // (2 * closed) for a in actual) if closed else sum(map(sum, cents))
    row = re.search(r'<tr data-key="EMEA">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[1] == f"{to_date / 100:,.2f}" and cells[2] == f"{sum(actual) / 100:,.2f}"
    assert cells[5] == f"{run_rate / 100:,.2f}" and cells[4] == f"{sum(map(sum, cents)) / 100:,.2f}"
    assert page.count("<svg") == 2 and "<script>" not in page
    assert client.get("/actuals?method=guess").status_code == 400


def test_each_master_version_shows_what_it_changed(dashboard) -> None:
    app, tokens = dashboard
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {tokens['fiona']}"}
    first = submit(app, tokens["maria"], "EMEA-ENTERPRISE", n=5, seed=1)
    api.post(f"/api/v1/submissions/{first}/approve", headers=bearer, json={})
    lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 4, seed=1)]  # one line fewer
    body = {"team": "EMEA-ENTERPRISE", "lines": lines, "based_on": {"submission": first}}
    second = api.post("/api/v1/submissions", headers={"Authorization": f"Bearer {tokens['maria']}"}, json=body)
    api.post(f"/api/v1/submissions/{second.get_json()['id']}/approve", headers=bearer, json={})
    client = app.test_client()
    login(client, "fiona")
    assert 'href="/versions/2"' in client.get("/versions").get_data(as_text=True)
    page = client.get("/versions/2").get_data(as_text=True)
    assert "0 lines added, 1 removed" in page
    assert "5 lines added" in client.get("/versions/1").get_data(as_text=True)
    assert client.get("/versions/9").status_code == 404


def test_a_marketer_asks_for_a_transfer_and_finance_approves_it_on_the_transfers_page(dashboard) -> None:
    app, tokens = dashboard
    maria, fiona = app.test_client(), app.test_client()
    assert login(maria, "maria").status_code == 302 and login(fiona, "fiona").status_code == 302
    page = maria.get("/transfers").get_data(as_text=True)
    form = {
        "csrf_token": csrf(page),
        "from_region": "EMEA",
        "from_quarter": "Q1",
        "from_channel": "*",
        "to_region": "EMEA",
        "to_quarter": "Q2",
        "to_channel": "*",
        "amount": "20,000.00",
        "reason": "the summit moved to April",
    }
    assert maria.post("/transfers", data={**form, "csrf_token": "forged"}).status_code == 400
    done = maria.post("/transfers", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Transfer 1 asked for; it waits for finance." in done
    assert 'id="transfer-1"' in done and "maria approved as a marketer of EMEA" in done
    assert 'action="/transfers/1/decide"' not in done  # maria asked: she cannot approve it
    queue = fiona.get("/transfers").get_data(as_text=True)
    assert 'action="/transfers/1/decide"' in queue
    decided = fiona.post(
        "/transfers/1/decide",
        data={"csrf_token": csrf(queue), "action": "approve", "comment": "ok"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Transfer 1 approved." in decided and "allocation revision 1" in decided
    cells = app.test_client().get("/api/v1/allocations", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    by_key = {(c["region"], c["quarter"], c["channel"]): c["cents"] for c in cells.get_json()["allocations"]}
    org = SCHEMA.config.allocations["EMEA"]
    assert by_key["EMEA", "Q1", "*"] == int(org["Q1"] * 100) - 2_000_000
    assert by_key["EMEA", "Q2", "*"] == int(org["Q2"] * 100) + 2_000_000
    assert "EMEA Q1" not in app.test_client().get("/transfers").get_data(as_text=True)  # a login is needed


def test_finance_runs_a_reforecast_cycle_on_the_budget_page(dashboard) -> None:
    app, tokens = dashboard
    maria, fiona = app.test_client(), app.test_client()
    assert login(maria, "maria").status_code == 302 and login(fiona, "fiona").status_code == 302
    api = app.test_client()
    finance = {"Authorization": f"Bearer {tokens['fiona']}"}
    sid = submit(app, tokens["maria"], "EMEA-ENTERPRISE")
    assert api.post(f"/api/v1/submissions/{sid}/approve", headers=finance, json={}).status_code == 200
    page = maria.get("/budget").get_data(as_text=True)
    assert "No reforecast cycle is open." in page and "No budget baseline is locked yet" in page
    assert 'id="open-cycle"' not in page  # marketers do not open cycles
    assert api.post("/api/v1/baselines", headers=finance, json={"name": "FY budget"}).status_code == 201
    page = fiona.get("/budget").get_data(as_text=True)
    form = {"csrf_token": csrf(page), "name": "Q1 reforecast", "through": "m03", "deadline": "2027-04-20"}
    assert fiona.post("/cycles", data={**form, "csrf_token": "forged"}).status_code == 400
    refused = fiona.post("/cycles", data={**form, "deadline": "soon"}, follow_redirects=True).get_data(as_text=True)
    assert "Give the deadline as a date (YYYY-MM-DD)." in refused and 'id="open-cycle"' in refused
    opened = fiona.post("/cycles", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Q1 reforecast is open: the months through Apr 2026 are closed." in opened
    assert '<tr data-team="EMEA-ENTERPRISE" class="reforecast-not-submitted">' in opened
    assert "plansheet remind --as fiona" in opened
    # The budget table agrees with the API's answer cell for cell (the API's figures are checked in the oracle test).
    answer = api.get("/api/v1/budget?by=region&period=quarter", headers=finance).get_json()
    for row in answer["rows"]:
        cells = re.search(rf'<tr data-key="{row["region"]}\|{row["period"]}">(.*?)</tr>', opened, re.S).group(1)
        shown = re.findall(r'data-cents="(-?\d*)"', cells)
        want = [row["cents"][k] for k in ("budget", "plan", "estimate", "actual")]
        assert shown == ["" if v is None else str(v) for v in want], row
    # No monthly actuals yet: Q1 (closed) has no estimate, the open quarters' is the plan.
    q1 = re.search(r'<tr data-key="EMEA\|Q1">(.*?)</tr>', opened, re.S).group(1)
    assert "not known" in q1
    mine = maria.get("/budget").get_data(as_text=True)
    assert '<tr data-team="EMEA-ENTERPRISE"' in mine and 'data-team="NA-ENTERPRISE"' not in mine
    assert "Close Q1 reforecast" not in mine
    cycle = api.get("/api/v1/cycles", headers=finance).get_json()["cycles"][0]["id"]
    assert (
        maria.post(f"/cycles/{cycle}/close", data={"csrf_token": csrf(mine)}, follow_redirects=True).status_code == 200
    )
    assert api.get("/api/v1/cycles", headers=finance).get_json()["cycles"][0]["status"] == "open"  # maria may not
    closed = fiona.post(f"/cycles/{cycle}/close", data={"csrf_token": csrf(opened)}, follow_redirects=True)
    assert "Q1 reforecast is closed." in closed.get_data(as_text=True)
    assert 'id="open-cycle"' in closed.get_data(as_text=True)


def next_years_plan(app: Any, tokens: dict[str, str]) -> int:
    """EMEA-Enterprise's plan of next year, submitted by its marketer and approved by finance; next year."""
    following = SCHEMA.calendar.year + 1
    api = app.test_client()
    lines = [as_json(x) for x in sample_lines(SCHEMA.for_year(following), "EMEA", 6, seed=3)]
    sent = api.post(f"/api/v1/submissions?year={following}", headers={"Authorization": f"Bearer {tokens['maria']}"},
                    json={"team": "EMEA-ENTERPRISE", "lines": lines})  # fmt: skip
    assert sent.status_code == 201, sent.get_json()
    approved = api.post(f"/api/v1/submissions/{sent.get_json()['id']}/approve",
                        headers={"Authorization": f"Bearer {tokens['fiona']}"}, json={})  # fmt: skip
    assert approved.status_code == 200, approved.get_json()
    return following


def test_the_year_switcher_shows_next_years_master_and_every_link_keeps_the_year(dashboard) -> None:
    app, tokens = dashboard
    following = next_years_plan(app, tokens)
    client = app.test_client()
    login(client, "fiona")
    this_page = client.get("/master").get_data(as_text=True)
    page = client.get(f"/master?year={following}").get_data(as_text=True)
    total = re.search(r'id="master-total">Total planned: <strong>([^<]+)</strong>', page).group(1)
    assert re.search(r'id="master-total">Total planned: <strong>([^<]+)</strong>', this_page).group(1) != total
    assert total.split()[0] not in ("0", "0.00")  # next year's plan, in next year's master
    # The switcher names both years, the page's as the current one; every link and form keeps the year.
    assert re.search(
        rf'<a href="/master\?year={following}" class="current" aria-current="page">FY{following}</a>', page
    )
    assert f'href="/master?year={SCHEMA.calendar.year}"' in page
    nav = re.findall(r"<nav[^>]*>(.*?)</nav>", page, re.S)[0]
    assert all(f"year={following}" in href for href in re.findall(r'href="([^"]+)"', nav))
    assert f'<input type="hidden" name="year" value="{following}">' in page
    assert "year=" not in re.findall(r"<nav[^>]*>(.*?)</nav>", this_page, re.S)[0]  # the default year: plain links


def test_the_year_over_year_page_shows_the_apis_figures_and_says_when_there_is_no_year_before(dashboard) -> None:
    app, tokens = dashboard
    submit(app, tokens["maria"], "EMEA-ENTERPRISE")
    sid = submit(app, tokens["sam"], "NA-ENTERPRISE")
    api = app.test_client()
    fiona = {"Authorization": f"Bearer {tokens['fiona']}"}
    assert api.post(f"/api/v1/submissions/{sid}/approve", headers=fiona, json={}).status_code == 200
    following = next_years_plan(app, tokens)
    client = app.test_client()
    login(client, "fiona")
    page = client.get(f"/year-over-year?year={following}").get_data(as_text=True)
    assert f"FY{following} against FY{following - 1}" in page
    answer = api.get(f"/api/v1/year-over-year?year={following}&by=region&period=year", headers=fiona).get_json()
    for row in answer["rows"]:  # one answer: the page shows the API's figures, formatted for people
        cells = re.search(rf'<tr data-key="{row["region"]}">(.*?)</tr>', page, re.S).group(1)
        shown = re.findall(r"<td[^>]*>([^<]*)</td>", cells)
        assert shown[1:3] == [f"{row['cents']['plan'] / 100:,.2f}", f"{row['cents']['last_plan'] / 100:,.2f}"]
    assert {r["region"] for r in answer["rows"]} == {"EMEA", "NA"}
    this_year = client.get("/year-over-year").get_data(as_text=True)
    assert "There is no year before" in this_year and f"[years.{following - 2}]" in this_year
