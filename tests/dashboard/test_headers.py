"""The headers of each area, through Flask's test client: the add-in's pages, the dashboard, CORS, proxies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sheet_templates.errors import ConfigError
from sync_service.access.auth import create_token
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from sync_service.web.headers import OFFICE_HOSTS

PANE = "https://pane.example.com"
ELSEWHERE = "https://evil.example.net"


def directives(header: str) -> dict[str, list[str]]:
    parts = [p.split() for p in header.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    url = f"sqlite:///{tmp_path / 'headers.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "ALLOWED_ORIGINS": f"{PANE}, http://localhost:3000/"})
    with app.extensions[STORE].transaction() as session:
        finance = create_token(session, "fiona", "finance")
    yield app, finance
    app.extensions[STORE].dispose()


@pytest.mark.parametrize("page", ["taskpane.html", "functions.html"])
def test_the_add_in_pages_allow_office_js_and_framing_by_the_office_hosts(service, page: str) -> None:
    app, _ = service
    answer = app.test_client().get(f"/addin/officejs/{page}")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert "X-Frame-Options" not in answer.headers
    policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'", "https://appsforoffice.microsoft.com", "https://ajax.aspnetcdn.com"]
    assert policy["frame-ancestors"] == list(OFFICE_HOSTS)
    assert "https://*.officeapps.live.com" in policy["frame-ancestors"] and "*" not in policy["frame-ancestors"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["default-src"] == ["'self'"] and policy["base-uri"] == ["'none'"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_dashboard_still_refuses_framing_and_foreign_script(service) -> None:
    app, _ = service
    answer = app.test_client().get("/login")
    assert answer.status_code == 200
    assert answer.headers["X-Frame-Options"] == "DENY"
    policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert "connect-src" not in policy  # default-src 'self'
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in app.test_client().get("/login", headers={"Origin": PANE}).headers


def test_json_answers_keep_nosniff_and_get_no_page_policy(service) -> None:
    app, finance = service
    answer = app.test_client().get("/api/v1/functions", headers={"Authorization": f"Bearer {finance}"})
    assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in answer.headers and "X-Frame-Options" not in answer.headers


def preflight(client: Any, path: str, origin: str) -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/functions:batch", "/api/v1/functions/PS_PLANNED", "/api/v1/functions", "/addin/functions.json"]
)
def test_a_preflight_from_an_allowed_origin_is_answered_without_a_token(service, path: str) -> None:
    app, _ = service
    answer = preflight(app.test_client(), path, PANE)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == PANE
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert answer.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert "Origin" in answer.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in answer.headers
    assert preflight(app.test_client(), path, "http://localhost:3000").headers["Access-Control-Allow-Origin"] == (
        "http://localhost:3000"
    )


def test_a_preflight_from_another_origin_gets_no_allowance(service) -> None:
    app, _ = service
    for origin in (ELSEWHERE, "null", PANE + ".evil.example.net", "http://pane.example.com"):
        answer = preflight(app.test_client(), "/api/v1/functions:batch", origin)
        assert not [h for h, _ in answer.headers.items() if h.startswith("Access-Control-Allow")], origin


def test_cors_answers_carry_the_origin_on_success_and_on_refusal(service) -> None:
    app, finance = service
    client = app.test_client()
    body = {"calls": [{"name": "PS_VARIANCE", "args": [[[100.0]], [[90.0]]]}]}
    ok = client.post(
        "/api/v1/functions:batch", json=body, headers={"Origin": PANE, "Authorization": f"Bearer {finance}"}
    )
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == PANE
    assert "Origin" in ok.headers["Vary"] and "Access-Control-Allow-Credentials" not in ok.headers
    refused = client.post("/api/v1/functions:batch", json=body, headers={"Origin": PANE})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == PANE  # the pane reads why
    foreign = client.post(
        "/api/v1/functions:batch", json=body, headers={"Origin": ELSEWHERE, "Authorization": f"Bearer {finance}"}
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers and "Origin" in foreign.headers["Vary"]


def test_only_the_function_and_add_in_endpoints_answer_cors(service) -> None:
    app, finance = service
    client = app.test_client()
    for path in ("/api/v1/submissions", "/api/v1/rollup", "/api/v1/users"):
        answer = client.get(path, headers={"Origin": PANE, "Authorization": f"Bearer {finance}"})
        assert "Access-Control-Allow-Origin" not in answer.headers, path
        assert "Access-Control-Allow-Origin" not in preflight(client, path, PANE).headers, path
    assert preflight(client, "/api/v1/submissions", PANE).status_code == 200  # Flask's own OPTIONS answer


def test_no_cors_without_configured_origins(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "TESTING": True})
    answer = preflight(app.test_client(), "/api/v1/functions:batch", PANE)
    assert not [h for h, _ in answer.headers.items() if h.startswith("Access-Control-")]
    assert "Vary" not in app.test_client().get("/addin/functions.json", headers={"Origin": PANE}).headers


@pytest.mark.parametrize("origins", ["*", "https://pane.example.com/path", "pane.example.com", "https://*.example.com"])
def test_a_wildcard_or_a_url_that_is_not_an_origin_is_refused_at_start_up(tmp_path: Path, origins: str) -> None:
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'bad.db'}", "ALLOWED_ORIGINS": origins})


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "plansheet.acme.com", "X-Forwarded-For": "203.0.113.7"}


def test_behind_a_configured_proxy_the_manifest_points_at_https(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'proxy.db'}", "TESTING": True, "PROXY_HOPS": 1})
    manifest = app.test_client().get("/addin/manifest.xml", headers=FORWARDED).get_data(as_text=True)
    assert "https://plansheet.acme.com/addin/officejs/taskpane.html" in manifest
    assert "http://" not in manifest.replace("http://schemas", "").replace("http://www.w3.org", "")


def test_without_proxy_hops_forwarded_headers_are_ignored(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'direct.db'}", "TESTING": True})
    manifest = app.test_client().get("/addin/manifest.xml", headers=FORWARDED).get_data(as_text=True)
    assert "plansheet.acme.com" not in manifest and "http://localhost/addin/officejs/taskpane.html" in manifest


def test_proxy_hops_from_the_environment_and_a_bad_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANSHEET_PROXY_HOPS", "2")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}", "TESTING": True})
    # A client's own value first, then what the outer proxy saw, then the hop between the two proxies.
    two = {
        "X-Forwarded-Proto": "http, https, http",
        "X-Forwarded-Host": "evil.example.net, plansheet.acme.com, 10.0.0.5:8050",
    }
    assert "https://plansheet.acme.com/" in app.test_client().get("/addin/manifest.xml", headers=two).get_data(
        as_text=True
    )
    monkeypatch.setenv("PLANSHEET_PROXY_HOPS", "-1")
    with pytest.raises(ConfigError, match="PROXY_HOPS"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"})
