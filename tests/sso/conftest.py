"""A real OpenID provider (oidc-provider under Node, tests/sso/provider) and a real service signing in with it.

The provider's packages are pinned by its package-lock.json and installed with `npm ci` when
node_modules is missing or older than the lock file. The service is `plansheet serve` on a free
loopback port, configured through its `PLANSHEET_OIDC_*` environment as an operator would; a
person signs in with `requests` and a cookie jar, through the provider's own sign-in form.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.conftest import SETUP_HINT, require_binary
from tests.sync_service.live_server import as_json, call, free_port, init, service_env, start, stop, token

PROVIDER = Path(__file__).resolve().parent / "provider"
NPM_HINT = f"sudo apt-get install --no-install-recommends nodejs npm ({SETUP_HINT})"
CLIENT_ID, CLIENT_SECRET = "plansheet-dashboard", "a-client-secret-of-the-tests"
PROVIDER_NAME = "Acme Login"
GROUPS = {
    "plansheet-finance": {"role": "finance"},
    "emea-marketing": {"role": "marketer", "regions": ["EMEA"]},
    "na-smb-planners": {"role": "marketer", "teams": ["NA-SMB"]},
    "plansheet-admins": {"role": "admin"},
}
# Who the provider knows: account id -> claims. "groups" is the role claim; rob's maps to nothing.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "fiona": {"email": "fiona@acme.test", "name": "Fiona", "groups": ["plansheet-finance", "staff"]},
    "maria": {"email": "maria@acme.test", "name": "Maria", "groups": ["emea-marketing"]},
    "li": {"email": "li@acme.test", "name": "Li", "groups": ["staff", "na-smb-planners"]},
    "rob": {"email": "rob@acme.test", "name": "Rob", "groups": ["staff", "everyone"]},
    "chris": {"email": "chris@acme.test", "name": "Chris", "groups": ["plansheet-finance"]},
}
SCHEMA = build_schema(load_config())


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


@pytest.fixture(scope="session")
def provider_node() -> str:
    """node, with the provider's pinned packages installed (`npm ci` when needed)."""
    node = require_binary("node", NPM_HINT)
    npm = require_binary("npm", NPM_HINT)
    lock = PROVIDER / "package-lock.json"
    marker = PROVIDER / "node_modules" / ".package-lock.json"  # npm writes it on every install
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"npm ci in {PROVIDER} failed:\n{done.stdout}\n{done.stderr}"
    return node


def start_provider(node: str, folder: Path, port: int, redirect_uri: str) -> subprocess.Popen[str]:
    settings = folder / "provider.json"
    accounts = folder / "accounts.json"
    accounts.write_text(json.dumps(ACCOUNTS), encoding="utf-8")
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]}
    settings.write_text(json.dumps({"port": port, "client": client, "accounts": str(accounts)}), encoding="utf-8")
    log = folder / "provider.log"
    with log.open("w") as out:  # the process keeps its own copy of the file open
        process = subprocess.Popen(
            [node, str(PROVIDER / "provider.mjs"), str(settings)], stdout=out, stderr=subprocess.STDOUT, text=True
        )
    deadline = time.monotonic() + 20
    while "listening" not in log.read_text(encoding="utf-8"):  # printed once it accepts connections
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the OpenID provider did not start:\n{log.read_text(encoding='utf-8')}")
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def sso(provider_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    """The provider and a service using it, with an approved EMEA plan and an NA plan waiting for finance."""
    folder = tmp_path_factory.mktemp("sso")
    issuer = f"http://127.0.0.1:{free_port()}"
    env = service_env(f"sqlite:///{folder / 'sso.db'}")
    env.update(
        {
            "PLANSHEET_OIDC_ISSUER": issuer,
            "PLANSHEET_OIDC_CLIENT_ID": CLIENT_ID,
            "PLANSHEET_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "PLANSHEET_OIDC_PROVIDER_NAME": PROVIDER_NAME,
            "PLANSHEET_OIDC_SCOPES": "openid email profile groups",
            "PLANSHEET_OIDC_GROUPS": json.dumps(GROUPS),
        }
    )
    init(env)
    admin, finance = token(env, "root", "admin"), token(env, "felix", "finance")
    submitter = token(env, "fred", "finance")  # a plan is approved by another person than its submitter
    service, base = start(env)
    provider = None
    try:
        provider = start_provider(provider_node, folder, int(issuer.rsplit(":", 1)[1]), f"{base}/login/sso/callback")
        ids = []
        for team, region in (("EMEA-ENTERPRISE", "EMEA"), ("NA-SMB", "NA")):
            lines = [as_json(x) for x in sample_lines(SCHEMA, region, 4, seed=7, id_prefix=f"{region}S")]
            status, body = call(base, submitter, "POST", "/api/v1/submissions", {"team": team, "lines": lines})
            assert status == 201, body
            ids.append(body["id"])
        status, body = call(base, finance, "POST", f"/api/v1/submissions/{ids[0]}/approve", {})
        assert status == 200, body
        yield Sso(base, issuer, folder / "accounts.json", env, admin, finance, ids[1])
    finally:
        if provider is not None:
            stop(provider)
        stop(service)


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
