"""The dashboard's login under abuse: failed logins throttled per name and per address, logout ending the
session on the server, and the session cookie's attributes, as a browser would see them."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sheet_templates import build_schema, load_config
from sheet_templates.errors import ConfigError
from sync_service.access import passwords
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from sync_service.platform.storage import WebSession
from tests.dashboard.web_helpers import PASSWORD, csrf

SCHEMA = build_schema(load_config())
WRONG = "not the password"


@pytest.fixture
def make_app(tmp_path: Path):
    made = []

    def make(**config: Any) -> Any:
        url = f"sqlite:///{tmp_path / 'login.db'}"
        if not made:
            upgrade(url)
        app = create_app({"DATABASE_URL": url, "TESTING": True, **config})
        store = app.extensions[STORE]
        if not made:
            with store.transaction() as session:
                sync_teams(session, SCHEMA)
                for name, role, teams in (
                    ("maria", "marketer", ["EMEA-ENTERPRISE"]),
                    ("sam", "marketer", ["NA-ENTERPRISE"]),
                    ("fiona", "finance", []),
                ):
                    create_token(session, name, role, teams)
                    set_password(session, name, PASSWORD)
        made.append(store)
        return app

    yield make
    for store in made:
        store.dispose()


def login(client: Any, name: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    token = csrf(client.get("/login", **kwargs).get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token}, **kwargs)


def logged_in(client: Any) -> bool:
    return client.get("/").status_code == 200


def from_address(app: Any, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """Every password the login checks (the real check still runs)."""
    checked: list[str] = []
    real = passwords.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checked.append(password)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting)
    return checked


@pytest.mark.parametrize("name", ["maria", "nobody-at-all"])
def test_the_sixth_wrong_password_is_429_and_even_the_right_one_waits_for_the_window(
    make_app, password_checks, name
) -> None:
    app = make_app(LOGIN_LIMIT_ACCOUNT="5 per 3 seconds", LOGIN_LIMIT_ADDRESS="100 per minute")
    client = app.test_client()
    for _ in range(5):
        refused = login(client, name, WRONG)
        assert refused.status_code == 401 and "do not match" in refused.get_data(as_text=True)
    assert len(password_checks) == 5

    throttled = login(client, name, WRONG)
    assert throttled.status_code == 429
    wait = int(throttled.headers["Retry-After"])
    assert 1 <= wait <= 4
    page = throttled.get_data(as_text=True)
    assert "Too many failed logins" in page and "Try again in" in page and "UTC" in page
    assert throttled.mimetype == "text/html" and "Content-Security-Policy" in throttled.headers

    right = login(client, name)  # known or not, the same answer: the name's existence is not told
    assert right.status_code == 429 and not logged_in(client)
    assert len(password_checks) == 5, "a throttled login must not check the password"

    time.sleep(wait)
    after = login(client, name)
    if name == "maria":
        assert after.status_code == 302 and logged_in(client)
    else:
        assert after.status_code == 401
    assert len(password_checks) == 6


def test_many_names_from_one_address_hit_the_address_limit(make_app, password_checks) -> None:
    app = make_app(LOGIN_LIMIT_ACCOUNT="5 per minute", LOGIN_LIMIT_ADDRESS="4 per minute")
    guesser = from_address(app, "203.0.113.7")
    for name in ("maria", "sam", "fiona", "nobody"):
        assert login(guesser, name, WRONG).status_code == 401
    over = login(guesser, "someone-else", WRONG)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert login(guesser, "sam").status_code == 429 and not logged_in(guesser)
    assert len(password_checks) == 4

    # The accounts themselves are below their limit: from another address the right password works.
    elsewhere = from_address(app, "198.51.100.20")
    assert login(elsewhere, "sam").status_code == 302 and logged_in(elsewhere)


def test_a_locked_account_does_not_stop_another_account_below_the_limits(make_app) -> None:
    app = make_app(LOGIN_LIMIT_ACCOUNT="2 per minute", LOGIN_LIMIT_ADDRESS="10 per minute")
    client = app.test_client()
    for _ in range(2):
        assert login(client, "maria", WRONG).status_code == 401
    assert login(client, "maria").status_code == 429
    assert login(client, "sam", WRONG).status_code == 401  # one failure of sam's: below the limit
    assert login(client, "sam").status_code == 302 and logged_in(client)


def test_successful_logins_never_count_against_the_limits(make_app) -> None:
    app = make_app(LOGIN_LIMIT_ACCOUNT="2 per minute", LOGIN_LIMIT_ADDRESS="2 per minute")
    client = app.test_client()
    for _ in range(6):
        assert login(client, "fiona").status_code == 302
        assert logged_in(client)
        client.post("/logout", data={"csrf_token": csrf(client.get("/").get_data(as_text=True))})


def test_a_cookie_copied_before_logout_is_refused_after_it(make_app) -> None:
    app = make_app()
    client = app.test_client()
    assert login(client, "fiona").status_code == 302
    copied = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert logged_in(thief)  # the copy works while the login lasts

    page = client.get("/").get_data(as_text=True)
    out = client.post("/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 302 and out.headers["Location"].endswith("/login")
    assert not logged_in(client)

    refused = thief.get("/master")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    with app.extensions[STORE].reading() as s:
        records = list(s.scalars(select(WebSession)))
    assert len(records) == 1 and records[0].ended_at is not None


def test_a_new_login_ends_the_session_it_replaces(make_app) -> None:
    app = make_app()
    client = app.test_client()
    login(client, "fiona")
    before = client.get_cookie("session").value
    login(client, "sam")
    stale = app.test_client()
    stale.set_cookie("session", before)
    assert not logged_in(stale)
    assert logged_in(client)


def test_a_cookie_from_before_session_records_is_refused(make_app) -> None:
    """A cookie signed before this change (no session id) no longer logs anyone in."""
    app = make_app()
    client = app.test_client()
    login(client, "fiona")
    with client.session_transaction() as cookie:
        del cookie["sid"]
    assert not logged_in(client)


def _session_cookie(response: Any) -> str:
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_the_session_cookie_is_lax_and_http_only_and_secure_over_https(make_app) -> None:
    app = make_app()
    plain = _session_cookie(login(app.test_client(), "fiona"))
    assert "SameSite=Lax" in plain and "HttpOnly" in plain and "Secure" not in plain

    secure = app.test_client()
    over_https = _session_cookie(login(secure, "fiona", base_url="https://localhost"))
    assert "SameSite=Lax" in over_https and "HttpOnly" in over_https and "Secure" in over_https
    page = secure.get("/", base_url="https://localhost")
    assert page.status_code == 200
    out = secure.post("/logout", data={"csrf_token": csrf(page.get_data(as_text=True))}, base_url="https://localhost")
    cleared = _session_cookie(out)
    assert "Expires=Thu, 01 Jan 1970" in cleared and "Secure" in cleared and "SameSite=Lax" in cleared


def test_the_cookie_is_secure_when_the_environment_says_so(make_app, monkeypatch) -> None:
    monkeypatch.setenv("PLANSHEET_SESSION_COOKIE_SECURE", "true")  # behind a proxy that ends TLS
    app = make_app()
    cookie = _session_cookie(login(app.test_client(), "fiona"))
    assert "Secure" in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_a_limit_that_cannot_be_read_stops_the_start(make_app) -> None:
    with pytest.raises(ConfigError, match="LOGIN_LIMIT_ACCOUNT is 'five an hour'"):
        make_app(LOGIN_LIMIT_ACCOUNT="five an hour")


def test_with_its_redis_down_the_login_still_works_and_is_still_throttled(make_app) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0", LOGIN_LIMIT_ACCOUNT="2 per minute")
    client = app.test_client()
    assert [login(client, "sam", WRONG).status_code for _ in range(3)] == [401, 401, 429]
    assert login(client, "fiona").status_code == 302 and logged_in(client)
