"""Error pages for browsers and problem details for programs; the login form; the tokens and add-ins page.

Through Flask's test client, sending the Accept header a browser sends (or none, as curl and the
API's clients do), as a person would meet each: a mistyped address, a form's address opened on its
own, a file too large, a server error, a refused login, setting up an add-in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sheet_templates import build_schema, load_config
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from sync_service.web import base as web_base
from tests.dashboard.web_helpers import PASSWORD, csrf, login, signed_in
from tests.sync_service.http_helpers import problem

SCHEMA = build_schema(load_config())
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        url = f"sqlite:///{tmp_path / 'pages.db'}"
        if not made:
            upgrade(url)
        app = create_app({"DATABASE_URL": url, "TESTING": True, **config})
        if not made:
            with app.extensions[STORE].transaction() as session:
                sync_teams(session, SCHEMA)
                for name, role, teams in (("maria", "marketer", ["EMEA-ENTERPRISE"]), ("ada", "admin", [])):
                    create_token(session, name, role, teams)
                    set_password(session, name, PASSWORD)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions[STORE].dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


def words(page: str) -> str:
    """The page's text as a reader sees it: no tags, one space between words."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def main_words(answer: Any) -> str:
    return words(re.search(r"<main[^>]*>(.*)</main>", answer.get_data(as_text=True), re.S).group(1))


def test_a_mistyped_address_is_a_page_for_a_browser_and_problem_details_for_a_program(app) -> None:
    client = app.test_client()
    page = client.get("/nonexistent", headers=BROWSER)
    assert page.status_code == 404 and page.mimetype == "text/html"
    text = main_words(page)
    assert "Page not found" in text and "check the spelling" in text
    assert 'href="/login">Sign in to Plansheet</a>' in page.get_data(as_text=True)  # signed out: a way in
    assert "Content-Security-Policy" in page.headers and page.headers["X-Frame-Options"] == "DENY"
    # A program gets RFC 9457 problem details, whether it asks for JSON or accepts anything (curl).
    for headers in ({"Accept": "application/json"}, {"Accept": "*/*"}, {}):
        problem(client.get("/nonexistent", headers=headers), 404)
    # The API, the add-in's files and the probes answer programs, whatever the Accept header says.
    problem(client.get("/api/v1/no-such-thing", headers=BROWSER), 404)
    problem(client.get("/addin/officejs/no-such-file.js", headers=BROWSER), 404)
    problem(client.post("/health", headers=BROWSER), 405)


def test_signed_in_the_error_page_keeps_the_navigation_and_offers_the_way_back(app) -> None:
    client = signed_in(app, "maria")
    page = client.get("/teams/EMEA-ENTERPRISE/nothing", headers={**BROWSER, "Referer": "http://localhost/approvals"})
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert '<nav aria-label="Pages"' in html and "maria (marketer)" in html
    assert 'href="/approvals">Go back to the page you came from</a>' in html
    assert 'href="/">Go to the plan status</a>' in html
    elsewhere = client.get("/nowhere", headers={**BROWSER, "Referer": "https://evil.example.net/x"})
    assert "Go back to the page you came from" not in elsewhere.get_data(as_text=True)


def test_a_page_the_role_may_not_open_says_why_in_words(app) -> None:
    page = signed_in(app, "ada").get("/", headers=BROWSER)
    assert page.status_code == 403 and page.mimetype == "text/html"
    text = main_words(page)
    assert "You cannot open this page" in text
    assert "The dashboard shows plans; admins manage users and tokens" in text  # the view's own words


def test_a_forms_address_opened_on_its_own_is_405_with_allow(app) -> None:
    page = app.test_client().get("/logout", headers=BROWSER)
    assert page.status_code == 405 and page.mimetype == "text/html"
    assert "POST" in page.headers["Allow"]
    assert "This page cannot do that" in main_words(page)
    refused = problem(app.test_client().get("/logout", headers={"Accept": "application/json"}), 405)
    assert refused["title"] == "Method Not Allowed"


def test_a_file_too_large_says_the_limit(make_app) -> None:
    app = make_app(MAX_CONTENT_LENGTH=2**20)
    client = app.test_client()
    big = {"csrf_token": "x", "name": "maria", "password": "p" * (2**20 + 10)}
    page = client.post("/login", data=big, headers=BROWSER)
    assert page.status_code == 413 and page.mimetype == "text/html"
    text = main_words(page)
    assert "The file is too large" in text and "up to 1 MB" in text
    problem(client.post("/api/v1/submissions", data=b"x" * (2**20 + 10), headers=BROWSER), 413)


def test_a_server_error_is_logged_and_the_page_shows_no_trace_of_it(app, caplog) -> None:
    def broken() -> str:
        raise RuntimeError("the secret internals of a failure")

    app.add_url_rule("/broken", "broken", broken)
    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        page = app.test_client().get("/broken", headers=BROWSER)
    assert page.status_code == 500 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Something went wrong" in html and "has been logged" in html
    assert "secret internals" not in html and "Traceback" not in html and "RuntimeError" not in html
    logged = [r for r in caplog.records if r.exc_info and "secret internals" in str(r.exc_info[1])]
    assert logged, "the error is logged with its traceback"
    body = problem(app.test_client().get("/broken"), 500)
    assert "secret internals" not in str(body)


def test_when_even_the_error_page_fails_plain_words_are_sent(app, monkeypatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the template cannot be drawn")

    monkeypatch.setattr(web_base, "render_template", failing)
    page = app.test_client().get("/nonexistent", headers=BROWSER)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "<h1>Page not found</h1>" in page.get_data(as_text=True)


def test_a_failed_login_keeps_the_name_and_summarises_the_error_at_the_top(app) -> None:
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    assert '<label for="field-name">Name</label>' in form and '<label for="field-password">Password</label>' in form
    refused = login(client, "maria", "not the password")
    assert refused.status_code == 401
    html = refused.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert "There is a problem" in summary and 'href="#field-password"' in summary and "do not match" in summary
    assert re.search(r'<input id="field-name" name="name" type="text" value="maria"', html)
    assert re.search(r'id="field-password"[^>]*aria-invalid="true"', html, re.S)
    assert 'value="not the password"' not in html  # a password is never sent back
    assert login(client, "maria").status_code == 302


def test_a_login_with_empty_fields_says_which_and_checks_no_password(app) -> None:
    client = app.test_client()
    token = csrf(client.get("/login").get_data(as_text=True))
    empty = client.post("/login", data={"name": " ", "password": "", "csrf_token": token})
    assert empty.status_code == 422
    text = words(empty.get_data(as_text=True))
    assert "Enter your Plansheet name" in text and "Enter your password" in text
    for _ in range(6):  # never a password check, so never throttled
        client.post("/login", data={"name": "maria", "password": "", "csrf_token": token})
    assert login(client, "maria").status_code == 302


def test_the_tokens_page_gives_the_manifest_and_the_steps_for_each_host(app) -> None:
    client = signed_in(app, "maria")
    page = client.get("/addin-token")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    manifest = re.search(r'id="manifest-link" href="([^"]+)"', html).group(1)
    served = client.get(manifest)
    assert served.status_code == 200 and served.mimetype == "application/xml"
    assert "http://localhost/addin/officejs/taskpane.html" in served.get_data(as_text=True)
    for link in re.findall(r'href="(/addin/apps-script/[^"]+)"', html):
        assert client.get(link).status_code == 200, link
    steps = re.findall(r'<ol class="steps">(.*?)</ol>', html, re.S)
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert headings[1:] == ["Excel on the web, Windows and Mac", "Google Sheets", "Excel on a Windows desktop"]
    assert [len(re.findall(r"<li>", s)) for s in steps] == [4, 4, 4]
    assert "http://localhost" in words(steps[2]) and "PLANSHEET_TOKEN" in steps[2]
    assert "only from an https:// address" in words(html)  # this service was reached over plain http

    made = client.post("/addin-token", data={"csrf_token": csrf(html)})
    assert made.headers["Cache-Control"] == "no-store"
    token = re.search(r'<code class="token" id="token">(ps_[^<]+)</code>', made.get_data(as_text=True)).group(1)
    answer = app.test_client().get("/api/v1/functions", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


def test_behind_its_public_address_the_steps_name_that_address(make_app) -> None:
    make_app()
    app = make_app(PUBLIC_URL="https://plansheet.example.com")
    html = signed_in(app, "maria").get("/addin-token").get_data(as_text=True)
    assert "<code>https://plansheet.example.com</code>" in html
    assert "only from an https:// address" not in words(html)
