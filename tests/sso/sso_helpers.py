"""Signing in through the OpenID provider as a browser does, and what the provider's groups and name are.

`Sso` is what the `sso` fixture (tests/sso/conftest.py) yields: the provider and a service using it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.sync_service.live_server import call

PROVIDER_NAME = "Acme Login"
GROUPS = {
    "plansheet-finance": {"role": "finance"},
    "emea-marketing": {"role": "marketer", "regions": ["EMEA"]},
    "na-smb-planners": {"role": "marketer", "teams": ["NA-SMB"]},
    "plansheet-admins": {"role": "admin"},
}


@dataclass
class Sso:
    base: str  # the service
    issuer: str  # the provider
    accounts: Path  # the provider's accounts file, read at every sign-in
    env: dict[str, str]
    admin: str  # a full admin token, to read users and the audit log as an admin would
    finance: str  # a full finance token
    pending: int  # a submission waiting for finance's decision

    def move(self, account: str, groups: list[str]) -> None:
        """Put `account` in `groups` at the provider, as its administrator would."""
        data = json.loads(self.accounts.read_text(encoding="utf-8"))
        data[account]["groups"] = groups
        self.accounts.write_text(json.dumps(data), encoding="utf-8")

    def users(self) -> dict[str, dict[str, Any]]:
        status, body = call(self.base, self.admin, "GET", "/api/v1/users")
        assert status == 200, body
        return {u["name"]: u for u in body["users"]}

    def audit(self) -> list[dict[str, Any]]:
        status, body = call(self.base, self.finance, "GET", "/api/v1/audit")
        assert status == 200, body
        return body["events"]


def begin(sso: Sso, browser: requests.Session | None = None) -> tuple[requests.Session, str]:
    """Click "Sign in with ...": the browser and the provider's authorization URL it is sent to (not followed)."""
    browser = browser or requests.Session()
    answer = browser.get(f"{sso.base}/login/sso", allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return browser, answer.headers["Location"]


def sign_in(sso: Sso, account: str, authorize_url: str | None = None, browser: requests.Session | None = None):
    """The whole sign-in as a browser makes it: to the provider, its sign-in form, back to the service.

    Returns the browser and the last page it shows.
    """
    if authorize_url is None:
        browser, authorize_url = begin(sso, browser)
    assert browser is not None
    form = browser.get(authorize_url, timeout=10)
    assert form.status_code == 200 and "/interaction/" in form.url, form.text
    action = re.search(r'<form[^>]*action="([^"]+)"', form.text).group(1)
    page = browser.post(
        requests.compat.urljoin(form.url, action),
        data={"prompt": "login", "login": account, "password": "whatever the provider asks"},
        timeout=10,
    )
    return browser, page


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
