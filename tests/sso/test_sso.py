"""Single sign-on against a real OpenID provider: login, mapping, refusals, re-mapping, the add-in token."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import update

from sheet_templates.errors import ConfigError
from sync_service.app import create_app
from sync_service.platform.storage import ApiToken, Store
from tests.sso.sso_helpers import GROUPS, PROVIDER_NAME, begin, csrf, sign_in
from tests.sync_service.live_server import call

pytestmark = pytest.mark.node

EMEA_TEAMS = ["EMEA-ENTERPRISE", "EMEA-MIDMARKET", "EMEA-SMB"]


def who(page: str) -> str:
    return re.search(r'<span class="who">([^<]*)</span>', page).group(1)


def teams_on(page: str) -> set[str]:
    return set(re.findall(r"\b(?:NA|EMEA|APAC|LATAM)-[A-Z]+\b", page))


def test_the_login_page_offers_the_provider(sso) -> None:
    page = requests.get(f"{sso.base}/login", timeout=10)
    assert page.status_code == 200 and f"Sign in with {PROVIDER_NAME}" in page.text


def test_the_login_page_without_single_sign_on_has_no_button(tmp_path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "SECRET_KEY": "k" * 32})
    page = app.test_client().get("/login")
    assert "Sign in with" not in page.get_data(as_text=True)
    assert app.test_client().get("/login/sso").status_code == 404


def test_the_authorization_request_uses_pkce_state_and_nonce(sso) -> None:
    _, url = begin(sso)
    asked = dict(parse_qsl(urlsplit(url).query))
    assert url.startswith(f"{sso.issuer}/auth?")
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert asked["state"] and asked["nonce"] and asked["response_type"] == "code"
    assert asked["redirect_uri"] == f"{sso.base}/login/sso/callback"


def test_finance_signs_in_and_sees_every_team(sso) -> None:
    browser, page = sign_in(sso, "fiona")
    assert page.status_code == 200 and page.url == f"{sso.base}/", page.text
    assert who(page.text) == "fiona@acme.test (finance)"
    assert {"NA-SMB", "EMEA-ENTERPRISE", "APAC-SMB", "LATAM-ENTERPRISE"} <= teams_on(page.text)
    versions = browser.get(f"{sso.base}/versions", timeout=10)
    assert "Versions and audit" in versions.text and "Audit log" in versions.text  # finance's own page
    user = sso.users()["fiona@acme.test"]
    assert user["role"] == "finance" and user["teams"] == []


def test_a_marketer_gets_the_teams_of_their_region_or_their_team(sso) -> None:
    _, maria = sign_in(sso, "maria")
    assert who(maria.text) == "maria@acme.test (marketer)"
    assert teams_on(maria.text) == set(EMEA_TEAMS)  # a region: each of its teams, and no other
    _, li = sign_in(sso, "li")
    assert who(li.text) == "li@acme.test (marketer)" and teams_on(li.text) == {"NA-SMB"}
    users = sso.users()
    assert users["maria@acme.test"]["teams"] == EMEA_TEAMS and users["li@acme.test"]["teams"] == ["NA-SMB"]


def test_a_person_whose_groups_map_to_nothing_is_refused_and_nothing_is_made(sso) -> None:
    before, events = sso.users(), len(sso.audit())
    browser, page = sign_in(sso, "rob")
    assert page.status_code == 403
    assert "groups" in page.text and "<code>staff</code>" in page.text and "<code>everyone</code>" in page.text
    assert "no account was made" in page.text
    assert sso.users() == before and len(sso.audit()) == events
    assert browser.get(f"{sso.base}/", allow_redirects=False, timeout=10).status_code == 302  # not signed in


@pytest.mark.parametrize("part", ["state", "nonce"])
def test_a_tampered_state_or_nonce_is_refused(sso, part) -> None:
    before = sso.users()
    browser, url = begin(sso)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query[part] = query[part][::-1] + "x"
    browser, page = sign_in(sso, "maria", urlunsplit(parts._replace(query=urlencode(query))), browser)
    assert page.status_code == 400 and "could not be checked" in page.text and "nothing was changed" in page.text
    assert sso.users() == before
    assert browser.get(f"{sso.base}/", allow_redirects=False, timeout=10).status_code == 302


def test_the_role_follows_the_groups_at_every_login(sso) -> None:
    _, page = sign_in(sso, "chris")
    assert who(page.text) == "chris@acme.test (finance)"
    sso.move("chris", ["emea-marketing"])  # the provider's administrator moves Chris out of finance
    _, page = sign_in(sso, "chris")
    assert who(page.text) == "chris@acme.test (marketer)" and teams_on(page.text) == set(EMEA_TEAMS)
    user = sso.users()["chris@acme.test"]
    assert user["role"] == "marketer" and user["teams"] == EMEA_TEAMS
    [change] = [e for e in sso.audit() if e["action"] == "user.sso_update" and e["target"] == "user:chris@acme.test"]
    assert change["detail"]["before"] == {"role": "finance", "teams": []}
    assert change["detail"]["after"] == {"role": "marketer", "teams": EMEA_TEAMS}
    assert change["detail"]["sub"] == "chris" and change["detail"]["issuer"] == sso.issuer
    sso.move("chris", ["staff"])  # out of every mapped group: refused, and the account is left as it was
    _, page = sign_in(sso, "chris")
    assert page.status_code == 403 and sso.users()["chris@acme.test"]["role"] == "marketer"


def addin_token(browser: requests.Session, base: str) -> str:
    page = browser.get(f"{base}/addin-token", timeout=10)
    assert page.status_code == 200 and "Make a token" in page.text
    made = browser.post(f"{base}/addin-token", data={"csrf_token": csrf(page.text)}, timeout=10)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    return re.search(r'<code class="token" id="token">(ps_[^<]+)</code>', made.text).group(1)


def test_the_add_in_token_reads_the_live_functions_and_nothing_more(sso) -> None:
    browser, _ = sign_in(sso, "maria")
    maria = addin_token(browser, sso.base)
    status, planned = call(sso.base, maria, "POST", "/api/v1/functions/PS_PLANNED", {"args": [[["EMEA"]]]})
    assert status == 200 and planned["result"][0][0] > 0  # the approved EMEA plan, as Maria may see it
    _, finance_view = call(sso.base, sso.finance, "POST", "/api/v1/functions/PS_PLANNED", {"args": [[["EMEA"]]]})
    assert planned == finance_view
    status, other = call(sso.base, maria, "POST", "/api/v1/functions/PS_PLANNED", {"args": [[["NA-SMB"]]]})
    assert status == 200 and other["error"]["code"] == "#N/A"  # still scoped to her teams
    assert call(sso.base, maria, "GET", "/api/v1/master/version")[0] == 200
    status, problem = call(sso.base, maria, "POST", "/api/v1/submissions", {"team": "EMEA-SMB", "lines": []})
    assert status == 403 and "'functions'" in problem["detail"]


def test_the_add_in_token_of_finance_cannot_approve(sso) -> None:
    browser, _ = sign_in(sso, "fiona")
    fiona = addin_token(browser, sso.base)
    status, problem = call(sso.base, fiona, "POST", f"/api/v1/submissions/{sso.pending}/approve", {})
    assert status == 403 and "scope 'functions'" in problem["detail"]
    assert call(sso.base, fiona, "GET", "/api/v1/users")[0] == 403
    status, submission = call(sso.base, sso.finance, "GET", f"/api/v1/submissions/{sso.pending}")
    assert submission["status"] == "submitted"  # the refused approval changed nothing
    created = [e for e in sso.audit() if e["action"] == "token.create" and e["target"] == "user:fiona@acme.test"]
    assert created and created[0]["detail"]["scope"] == "functions"


def test_an_expired_add_in_token_is_refused_with_401(sso) -> None:
    browser, _ = sign_in(sso, "li")
    li = addin_token(browser, sso.base)
    assert call(sso.base, li, "GET", "/api/v1/master/version")[0] == 200
    store = Store(sso.env["PLANSHEET_DATABASE_URL"])
    try:
        with store.transaction() as s:  # a week later
            yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            s.execute(update(ApiToken).where(ApiToken.id == li.split("_")[1]).values(expires_at=yesterday))
    finally:
        store.dispose()
    status, problem = call(sso.base, li, "POST", "/api/v1/functions/PS_PLANNED", {"args": [[["NA-SMB"]]]})
    assert status == 401 and "expired" in problem["detail"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"OIDC_CLIENT_SECRET": None}, "OIDC_CLIENT_SECRET"),
        ({"OIDC_ISSUER": "http://login.acme.test"}, "OIDC_ISSUER"),
        ({"OIDC_SCOPES": "email profile"}, "OIDC_SCOPES"),
        ({"OIDC_GROUPS": {}}, "OIDC_GROUPS"),
        ({"OIDC_GROUPS": '{"x": '}, "OIDC_GROUPS"),
        ({"OIDC_GROUPS": {"g": {"role": "boss"}}}, "OIDC_GROUPS['g'].role"),
        ({"OIDC_GROUPS": {"g": {"role": "marketer", "regions": ["MARS"]}}}, "OIDC_GROUPS['g'].regions"),
        ({"OIDC_GROUPS": {"g": {"role": "marketer", "teams": ["EMEA-NOPE"]}}}, "OIDC_GROUPS['g'].teams"),
        ({"OIDC_GROUPS": {"g": {"role": "finance", "teams": ["NA-SMB"]}}}, "OIDC_GROUPS['g']"),
    ],
)
def test_a_wrong_setting_stops_the_service_naming_it(tmp_path, settings, named) -> None:
    config = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "OIDC_ISSUER": "https://login.acme.test",
        "OIDC_CLIENT_ID": "plansheet",
        "OIDC_CLIENT_SECRET": "secret",
        "OIDC_SCOPES": "openid email",
        "OIDC_GROUPS": GROUPS,
        **settings,
    }
    with pytest.raises(ConfigError, match=re.escape(named)):
        create_app(config)
