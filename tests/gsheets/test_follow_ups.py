"""What follows a decision runs however the decision is made: the API and the dashboard push alike.

With PLANSHEET_GOOGLE_PUSH_ON_APPROVAL an approval pushes the master to Google, whether finance
approves through the API or on the dashboard; when Google fails, the approval stands and says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sheets_standin import SheetsFake

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.integrations.google.client import GoogleSettings, client
from sync_service.platform.context import STORE
from sync_service.platform.storage import User, WebSession
from tests.databases import upgrade
from tests.sync_service.live_server import as_json

SCHEMA = build_schema(load_config())
TEAM = "EMEA-ENTERPRISE"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], SheetsFake, str]]:
    with SheetsFake.serve() as fake:
        gc = client(GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01))
        master = gc.create("Marketing master budget")
        url = f"sqlite:///{tmp_path / 'follow.db'}"
        upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "TESTING": True,
                "SECRET_KEY": "follow-ups",
                "GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
                "GOOGLE_API_BASE": fake.base_url,
                "GOOGLE_BACKOFF": 0.01,
                "GOOGLE_RETRIES": 1,
                "GOOGLE_MASTER_SPREADSHEET_ID": master.id,
                "GOOGLE_PUSH_ON_APPROVAL": True,
                "JOB_ATTEMPTS": 2,
                "JOB_BACKOFF": 0.05,
            }
        )
        with app.extensions[STORE].transaction() as session:
            sync_teams(session, SCHEMA)
            tokens = {
                "maria": create_token(session, "maria", "marketer", [TEAM]),
                "fiona": create_token(session, "fiona", "finance"),
            }
        yield app, tokens, fake, master.id
        app.extensions[STORE].dispose()


def submit(app: Any, token: str, seed: int) -> int:
    lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 5, seed=seed)]
    answer = app.test_client().post(
        "/api/v1/submissions", headers={"Authorization": f"Bearer {token}"}, json={"team": TEAM, "lines": lines}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def logged_in(app: Any, name: str) -> Any:
    """A dashboard client with `name`'s session (as after a login)."""
    web = app.test_client()
    with app.extensions[STORE].transaction() as session:
        user_id = session.query(User).filter_by(name=name).one().id
        session.add(WebSession(id=f"test-{name}", user_id=user_id))  # the record a login writes
    page = web.get("/login")
    assert page.status_code == 200
    with web.session_transaction() as sess:
        sess["user_id"], sess["at"], sess["sid"] = user_id, int(time.time()), f"test-{name}"
        sess["pw"] = __import__("hashlib").sha256(b"").hexdigest()[:16]
    return web


def pushes(fake: SheetsFake) -> int:
    """How many master pushes Google saw: each ends with the batchUpdate that swaps the staged sheets in."""
    return sum(1 for r in fake.log if r.method == "POST" and r.path.endswith(":batchUpdate"))


def finished(app: Any, token: str, job: str) -> dict[str, Any]:
    """The job once it has finished (the API waits up to 20 s for it)."""
    answer = app.test_client().get(
        f"/api/v1/jobs/{job}", headers={"Authorization": f"Bearer {token}", "Prefer": "wait=20"}
    )
    assert answer.status_code == 200
    return answer.get_json()


def csrf(web: Any, path: str) -> str:
    page = web.get(path).get_data(as_text=True)
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_an_approval_on_the_dashboard_pushes_the_master_as_one_through_the_api_does(service) -> None:
    app, tokens, fake, master_id = service
    first = submit(app, tokens["maria"], seed=1)
    before = pushes(fake)
    answer = app.test_client().post(
        f"/api/v1/submissions/{first}/approve", headers={"Authorization": f"Bearer {tokens['fiona']}"}, json={}
    )
    assert answer.status_code == 200
    queued = answer.get_json()["master_sheet"]
    assert queued["status"] == "queued"
    done = finished(app, tokens["fiona"], queued["job"])
    assert done["status"] == "succeeded", done
    assert done["result"]["master_version"] == 1
    through_api = pushes(fake) - before
    assert through_api >= 1

    # A second plan edited from the first, approved on the dashboard.
    lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 6, seed=3)]
    answer = app.test_client().post(
        "/api/v1/submissions",
        headers={"Authorization": f"Bearer {tokens['maria']}"},
        json={"team": TEAM, "lines": lines, "based_on": {"submission": first}},
    )
    assert answer.status_code == 201
    second = answer.get_json()["id"]
    web = logged_in(app, "fiona")
    before = pushes(fake)
    page = web.post(
        f"/submissions/{second}/decide",
        data={"action": "approve", "comment": "", "csrf_token": csrf(web, f"/submissions/{second}")},
    )
    assert page.status_code == 302
    newest = app.test_client().get("/api/v1/jobs", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    done = finished(app, tokens["fiona"], newest.get_json()["jobs"][0]["id"])
    assert done["result"]["master_version"] == 2
    assert pushes(fake) - before == through_api  # the same push as the API's
    book = client(
        GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01)
    ).open_by_key(master_id)
    rows = book.worksheet("Master").get_all_values()
    assert len(rows) == 1 + 6  # the dashboard's approval is what the master sheet shows


def test_when_google_fails_a_dashboard_approval_stands_and_says_so(service) -> None:
    app, tokens, fake, _ = service
    sid = submit(app, tokens["maria"], seed=4)
    web = logged_in(app, "fiona")
    token = csrf(web, f"/submissions/{sid}")
    fake.inject(path=r"/v4/spreadsheets", status=500, times=None)  # every Sheets call fails
    page = web.post(f"/submissions/{sid}/decide", data={"action": "approve", "comment": "", "csrf_token": token})
    assert page.status_code == 302
    shown = web.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "approved" in shown
    assert "master sheet push is queued" in shown
    newest = app.test_client().get("/api/v1/jobs", headers={"Authorization": f"Bearer {tokens['fiona']}"})
    done = finished(app, tokens["fiona"], newest.get_json()["jobs"][0]["id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 2  # tried again once, then given up
    listing = web.get("/jobs").get_data(as_text=True)
    assert "Push the master to Google Sheets" in listing
    assert "Google answered 500" in listing and "gave up after 2 attempts" in listing
