"""A real OpenID provider (oidc-provider under Node, tests/sso/provider) and a real service signing in with it.

The provider's packages are pinned by its package-lock.json and installed with `npm ci` when
node_modules is missing or older than the lock file. The service is `plansheet serve` on a free
loopback port, configured through its `PLANSHEET_OIDC_*` environment as an operator would; a
person signs in with `requests` and a cookie jar, through the provider's own sign-in form.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.sso.sso_helpers import GROUPS, PROVIDER_NAME, Sso
from tests.sync_service.live_server import as_json, call, free_port, init, service_env, start, stop, token
from tests.system_deps import SETUP_HINT, npm_ci, require_binary

PROVIDER = Path(__file__).resolve().parent / "provider"
NPM_HINT = f"sudo apt-get install --no-install-recommends nodejs npm ({SETUP_HINT})"
CLIENT_ID, CLIENT_SECRET = "plansheet-dashboard", "a-client-secret-of-the-tests"
# Who the provider knows: account id -> claims. "groups" is the role claim; rob's maps to nothing.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "fiona": {"email": "fiona@acme.test", "name": "Fiona", "groups": ["plansheet-finance", "staff"]},
    "maria": {"email": "maria@acme.test", "name": "Maria", "groups": ["emea-marketing"]},
    "li": {"email": "li@acme.test", "name": "Li", "groups": ["staff", "na-smb-planners"]},
    "rob": {"email": "rob@acme.test", "name": "Rob", "groups": ["staff", "everyone"]},
    "chris": {"email": "chris@acme.test", "name": "Chris", "groups": ["plansheet-finance"]},
}
SCHEMA = build_schema(load_config())


@pytest.fixture(scope="session")
def provider_node() -> str:
    """node, with the provider's pinned packages installed (`npm ci` when needed)."""
    node = require_binary("node", NPM_HINT)
    npm = require_binary("npm", NPM_HINT)
    npm_ci(npm, PROVIDER)
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
