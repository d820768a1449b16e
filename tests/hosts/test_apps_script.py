"""The Apps Script add-on (addin/apps_script) under Node, against a real service and the Google Sheets fake.

One service on 127.0.0.1 with approved plans, configured for the local Google Sheets fake, with
two registered team plan sheets filled as marketers would (one valid, one with a bad cell).
`node --test addin/apps_script/test/*.test.js` then loads Code.gs with the Apps Script services
stubbed (UrlFetchApp doing real HTTP) and checks the custom functions against the catalogue and
the batch endpoint, the cache, the error messages, the menu, Submit plan and Refresh master.
Afterwards the service and the fake show what the menu did. Needs Node.js (`node` marker).

The service runs in this process (a WSGI server on a thread) rather than as `plansheet serve`:
the fake's guard that keeps google-auth from calling Google's real IAM endpoint after each token
refresh only works in the process that runs the fake.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from addin.live import LIVE
from sheet_templates import build_schema, load_config
from sheet_templates.gsheets_template import meta_range
from sheet_templates.samples import sample_lines
from sync_service.app import create_app
from sync_service.integrations.google.client import GoogleSettings, client
from sync_service.platform.context import STORE
from tests.gsheets.fake import SheetsFake
from tests.gsheets.sheet_helpers import fill
from tests.sync_service.live_server import as_json, call, free_port, init, service_env, token

pytestmark = pytest.mark.node

SCHEMA = build_schema(load_config())
ROOT = Path(__file__).resolve().parents[2]
APPS_SCRIPT = ROOT / "addin" / "apps_script"
HARNESS = Path(__file__).resolve().parent / "apps_script_harness.js"
TEAM = "EMEA-ENTERPRISE"  # approved plan; the marketer's team for the live functions
OTHER = "NA-ENTERPRISE"  # approved plan of a team the marketer does not see
GOOD, BAD = "APAC-SMB", "LATAM-SMB"  # registered Google team sheets
NODE_TIMEOUT = 120


@dataclass
class World:
    base: str
    tokens: dict[str, str]
    sheets: dict[str, dict[str, Any]]
    master_id: str
    fake: SheetsFake
    plan: dict[str, Any]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request would drown a failure
        pass


def _serve(app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _lines(team: str, seed: int, count: int = 15) -> list[dict[str, Any]]:
    return [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], count, seed=seed, id_prefix=team[:8])]


def _approve(base: str, tokens: dict[str, str], team: str, seed: int) -> int:
    status, body = call(base, tokens[team], "POST", "/api/v1/submissions", {"team": team, "lines": _lines(team, seed)})
    assert status == 201, body
    submission = body["id"]
    status, body = call(base, tokens["finance"], "POST", f"/api/v1/submissions/{submission}/approve", {})
    assert status == 200, body
    return submission


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("apps_script")
    with SheetsFake.serve() as fake:
        gc = client(GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01))
        master = gc.create("Marketing master budget")
        database_url = f"sqlite:///{folder / 'apps_script.db'}"
        env = service_env(database_url)
        init(env)
        tokens = {
            "finance": token(env, "fiona", "finance"),
            "marketer": token(env, "maria", "marketer", TEAM, GOOD, BAD),
            OTHER: token(env, "nora", "marketer", OTHER),
        }
        tokens[TEAM] = tokens["marketer"]
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
                "GOOGLE_API_BASE": fake.base_url,
                "GOOGLE_BACKOFF": 0.01,
                "GOOGLE_MASTER_SPREADSHEET_ID": master.id,
            }
        )
        server, base = _serve(app)
        try:
            _approve(base, tokens, TEAM, seed=1)
            other = _approve(base, tokens, OTHER, seed=2)
            sheets = {}
            for key, team, region in (("good", GOOD, "APAC"), ("bad", BAD, "LATAM")):
                status, created = call(
                    base, tokens["finance"], "POST", f"/api/v1/gsheets/teams/{team}", {"editors": []}
                )
                assert status == 201, created
                lines = sample_lines(SCHEMA, region, 14, seed=3, id_prefix=team[:8])
                if key == "bad":
                    lines[10] = {**lines[10], "channel": "Billboards"}  # sheet row 12
                fill(gc, created["spreadsheet_id"], lines)
                sheets[key] = {
                    "team": team,
                    "meta": fake.grid(created["spreadsheet_id"], meta_range()),
                    "lines": len(lines),
                    "cell": f"Plan!{SCHEMA['channel'].letter}12",
                }
            # The plan the automatic-refresh test approves while it runs (another team's, so the
            # other tests' figures hold).
            plan = {"team": OTHER, "token": tokens[OTHER], "lines": _lines(OTHER, 9, 11), "based_on": other}
            yield World(base, tokens, sheets, master.id, fake, plan)
        finally:
            server.shutdown()
            server.server_close()
            app.extensions[STORE].dispose()


def _node_env(world: World) -> dict[str, str]:
    return {
        **os.environ,
        "PLANSHEET_TEST_URL": world.base,
        "PLANSHEET_TEST_TOKENS": json.dumps({"finance": world.tokens["finance"], "marketer": world.tokens["marketer"]}),
        "PLANSHEET_TEST_TEAM": TEAM,
        "PLANSHEET_TEST_LIVE": json.dumps([f.name for f in LIVE]),
        "PLANSHEET_TEST_DEAD_URL": f"http://127.0.0.1:{free_port()}",
        "PLANSHEET_TEST_SHEETS": json.dumps(world.sheets),
        "PLANSHEET_TEST_PLAN": json.dumps(world.plan),
    }


def test_the_node_tests_pass_against_the_service_and_the_sheets_fake(world: World) -> None:
    tests = sorted(str(p.relative_to(ROOT)) for p in (APPS_SCRIPT / "test").glob("*.test.js"))
    assert {Path(t).name for t in tests} >= {"catalogue.test.js", "functions.test.js", "menu.test.js"}
    started = time.monotonic()
    done = subprocess.run(
        # One file at a time: the automatic-refresh test approves a plan while it runs.
        ["node", "--test", "--test-concurrency=1", "--test-reporter=spec", *tests],
        cwd=ROOT,
        env=_node_env(world),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    output = f"{done.stdout}\n{done.stderr}"
    if done.returncode != 0:
        pytest.fail(f"node --test failed (exit {done.returncode}):\n{output}", pytrace=False)
    skipped = re.search(r"^\S*\s*skipped (\d+)$", done.stdout, re.MULTILINE)
    assert skipped and skipped.group(1) == "0", f"every Node test runs here (none skipped):\n{output}"
    assert time.monotonic() - started < NODE_TIMEOUT

    # What the menu did, seen from the service and from Google: the good sheet was submitted, the bad one not,
    # and finance's Refresh master wrote the master spreadsheet.
    status, body = call(world.base, world.tokens["finance"], "GET", "/api/v1/submissions")
    assert status == 200, body
    pulled = [s for s in body["submissions"] if s["source"] == "gsheets"]
    assert {s["team"] for s in pulled} == {GOOD}
    assert all(s["lines"] == world.sheets["good"]["lines"] for s in pulled)
    header = world.fake.grid(world.master_id, "Master!A1:B1")
    assert header and header[0][0] == "Team"


def test_the_harness_calls_the_functions_as_sheets_does(world: World) -> None:
    """tests/hosts/apps_script_harness.js: the calls in, what each function returned (or its error) out."""
    calls = [
        {"name": "PS_PLANNED", "args": ["EMEA", "Q2"]},
        {"name": "PS_PLANNED", "args": ["EMEA", "Q2"]},  # from the cache
        {"name": "PS_LIVE_VARIANCE", "args": ["EMEA", {"$date": "2026-09-30"}]},
        {"name": "PS_VARIANCE", "args": [[[100.0], [50.0]], [[90.0], [60.0]]]},
        {"name": "PS_PLANNED", "args": ["MARS"]},
    ]
    done = subprocess.run(
        ["node", str(HARNESS)],
        input=json.dumps(
            {"url": world.base, "token": world.tokens["finance"], "calls": calls, "timeZone": "Asia/Tokyo"}
        ),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)

    batch = [
        {"name": "PS_PLANNED", "args": [[["EMEA"]], [["Q2"]]]},
        {"name": "PS_LIVE_VARIANCE", "args": [[["EMEA"]], [["2026-09-30"]]]},
        {"name": "PS_VARIANCE", "args": [[[100.0], [50.0]], [[90.0], [60.0]]]},
    ]
    status, body = call(world.base, world.tokens["finance"], "POST", "/api/v1/functions:batch", {"calls": batch})
    assert status == 200, body
    planned, variance, table = (r["result"] for r in body["results"])
    assert answers[:4] == [planned[0][0], planned[0][0], variance[0][0], table]
    assert answers[4] == {"error": "#N/A: scope 'MARS' is not a region or one of your teams"}
