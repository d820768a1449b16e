"""The Office.js add-in (addin/officejs) against a real service process.

The service runs on a SQLite file with an approved plan for two teams; then Node runs the
add-in's own tests (`node --test addin/officejs/test/*.test.mjs`) with Office's globals stubbed
and REAL requests to that service: every function associated, live answers equal to
functions:batch, batching, Excel errors, sign-in messages, Submit plan and Refresh. Here: the
served manifest (well-formed, every address on the service, every file it names served),
/addin/functions.json equal to `plansheet functions metadata`, and the cross-host harness.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.app import create_app
from tests.sync_service.live_server import CLI, as_json, call, init, service_env, start, stop, token
from tests.system_deps import require_binary

ROOT = Path(__file__).resolve().parents[2]
ADDIN = ROOT / "addin" / "officejs"
HARNESS = Path(__file__).with_name("officejs_harness.mjs")
NODE_HINT = "sudo apt-get install nodejs (Node.js 20 or newer), or run: bash .ci/system-deps.sh"
SCHEMA = build_schema(load_config())
TEAM, OTHER_TEAM = "EMEA-ENTERPRISE", "NA-ENTERPRISE"
NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "ov": "http://schemas.microsoft.com/office/taskpaneappversionoverrides",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.fixture(scope="module")
def node() -> str:
    return require_binary("node", NODE_HINT)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A service with EMEA-ENTERPRISE's and NA-ENTERPRISE's plans approved; a marketer token for each, finance."""
    folder = tmp_path_factory.mktemp("officejs")
    env = service_env(f"sqlite:///{folder / 'plansheet.db'}")
    init(env)
    admin = token(env, "admin", "admin")
    process, base = start(env, threads=4)
    try:
        tokens = {"admin": admin}
        for key, role, teams in (
            ("marketer", "marketer", [TEAM]),
            ("other", "marketer", [OTHER_TEAM]),
            ("finance", "finance", []),
        ):
            status, body = call(base, admin, "POST", "/api/v1/tokens", {"name": key, "role": role, "teams": teams})
            assert status == 201, body
            tokens[key] = body["token"]
        approved = {}
        for team, key in ((TEAM, "marketer"), (OTHER_TEAM, "other")):
            region = team.split("-")[0]
            lines = [as_json(x) for x in sample_lines(SCHEMA, region, 6, seed=3, id_prefix=team[:8])]
            status, body = call(base, tokens[key], "POST", "/api/v1/submissions", {"team": team, "lines": lines})
            assert status == 201, body
            approved[team] = body["id"]
            status, body = call(base, tokens["finance"], "POST", f"/api/v1/submissions/{body['id']}/approve", {})
            assert status == 200, body
        yield {"base": base, "env": env, "tokens": tokens, "approved": approved, "folder": folder}
    finally:
        stop(process)


def _excel(value: Any) -> Any:
    """A value as Excel's JavaScript API gives it: numbers, text, date serials; blank cells as ""."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return (value - dt.date(1899, 12, 30)).days
    return value


def plan_rows(team: str, blank_rows: int = 4) -> list[list[Any]]:
    """The Plan sheet's used range as Excel reads it: header, the lines, pre-numbered blank rows, formula columns."""
    region = team.split("-")[0]
    lines = sample_lines(SCHEMA, region, 6, seed=3, id_prefix=team[:8])
    months = [c.name for c in SCHEMA.month_columns]
    rows: list[list[Any]] = [[c.label for c in SCHEMA.columns]]
    for line in lines:
        total = float(sum(line[m] or 0 for m in months))
        rows.append([_excel(line.get(c.name)) if c.is_input else total for c in SCHEMA.columns])
    for i in range(blank_rows):
        filled = {"line_id": f"{region}-{len(lines) + i + 1:04d}", "region": region}
        rows.append([filled.get(c.name, "") if c.is_input else 0 for c in SCHEMA.columns])
    return rows


def edited(rows: list[list[Any]]) -> list[list[Any]]:
    """`rows` with the first line's notes changed: a plan that differs from the approved one."""
    notes = rows[0].index(SCHEMA["notes"].label)
    return [rows[0], [*rows[1][:notes], "moved a booth", *rows[1][notes + 1 :]], *rows[2:]]


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read(), response.headers.get("Content-Type", "")


def _node_env(service: dict[str, Any], fixture: dict[str, Any]) -> dict[str, str]:
    path = service["folder"] / f"fixture-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(fixture), encoding="utf-8")
    return {
        **os.environ,
        "PLANSHEET_URL": service["base"],
        "PLANSHEET_TOKENS": json.dumps(service["tokens"]),
        "PLANSHEET_FIXTURE": str(path),
    }


# --- the manifest -----------------------------------------------------------------------------------


def _urls(root: Any) -> list[str]:
    found = []
    for element in root.iter():
        found += [v for v in element.attrib.values() if "://" in v]
        if element.text and "://" in element.text and not element.text.strip().startswith("<"):
            found.append(element.text.strip())
    return found


def _resource(root: Any, resid: str) -> str:
    [url] = [u.get("DefaultValue") for u in root.iterfind(".//bt:Url", NS) if u.get("id") == resid]
    return url


def test_the_manifest_file_is_well_formed_and_names_the_service_by_placeholder() -> None:
    text = (ADDIN / "manifest.xml").read_text(encoding="utf-8")
    root = ElementTree.fromstring(text.encode())
    assert root.tag == f"{{{NS['o']}}}OfficeApp" and root.get(XSI_TYPE) == "TaskPaneApp"
    uuid.UUID(root.findtext("o:Id", namespaces=NS))  # a fixed GUID
    assert all(u.startswith("{{BASE_URL}}/addin/") for u in _urls(root)), _urls(root)
    for element in root.iterfind(".//bt:ShortStrings/bt:String", NS):
        assert len(element.get("DefaultValue")) <= 125, element.get("id")
    for element in root.iterfind(".//bt:LongStrings/bt:String", NS):
        assert len(element.get("DefaultValue")) <= 250, element.get("id")


def test_the_served_manifest_points_every_address_at_the_service(service: dict[str, Any]) -> None:
    base = service["base"]
    status, body, content_type = _get(f"{base}/addin/manifest.xml")
    assert status == 200 and content_type.startswith("application/xml")
    assert b"{{BASE_URL}}" not in body
    root = ElementTree.fromstring(body)
    urls = _urls(root)
    assert urls and all(u.startswith(f"{base}/addin/") for u in urls), urls
    for url in set(urls):  # every file the manifest names is served
        assert _get(url)[0] == 200, url

    sets = {s.get("Name"): s.get("MinVersion") for s in root.iterfind("o:Requirements/o:Sets/o:Set", NS)}
    assert sets["SharedRuntime"] == "1.1" and sets["CustomFunctionsRuntime"] in ("1.1", "1.2")
    assert [h.get("Name") for h in root.iterfind("o:Hosts/o:Host", NS)] == ["Workbook"]
    [host] = root.iterfind("ov:VersionOverrides/ov:Hosts/ov:Host", NS)
    assert host.get(XSI_TYPE) == "Workbook"
    [runtime] = host.iterfind("ov:Runtimes/ov:Runtime", NS)
    assert runtime.get("lifetime") == "long"
    shared = runtime.get("resid")
    [functions] = [
        e for e in host.iterfind("ov:AllFormFactors/ov:ExtensionPoint", NS) if e.get(XSI_TYPE) == "CustomFunctions"
    ]
    # One shared runtime: the custom functions' page, the function file and the task pane are the runtime's page.
    assert functions.find("ov:Page/ov:SourceLocation", NS).get("resid") == shared
    assert host.find("ov:DesktopFormFactor/ov:FunctionFile", NS).get("resid") == shared
    [action] = [a for a in host.iter(f"{{{NS['ov']}}}Action") if a.get(XSI_TYPE) == "ShowTaskpane"]
    assert action.find("ov:SourceLocation", NS).get("resid") == shared
    assert _resource(root, shared) == f"{base}/addin/officejs/taskpane.html"
    script = functions.find("ov:Script/ov:SourceLocation", NS).get("resid")
    metadata = functions.find("ov:Metadata/ov:SourceLocation", NS).get("resid")
    assert _resource(root, script) == f"{base}/addin/officejs/functions.js"
    assert _resource(root, metadata) == f"{base}/addin/functions.json"
    namespace = functions.find("ov:Namespace", NS).get("resid")
    strings = {s.get("id"): s.get("DefaultValue") for s in root.iterfind(".//bt:ShortStrings/bt:String", NS)}
    assert strings[namespace] == "PLANSHEET"
    page = _get(f"{base}/addin/officejs/taskpane.html")[1].decode()
    assert 'src="functions.js"' in page and 'src="taskpane.js"' in page  # the task pane page runs the functions too


def test_the_manifest_uses_the_public_url_setting(tmp_path: Path) -> None:
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}", "PUBLIC_URL": "https://plansheet.example.com/"}
    )
    response = app.test_client().get("/addin/manifest.xml", base_url="http://10.0.0.7:8000")
    urls = _urls(ElementTree.fromstring(response.data))
    assert urls and all(u.startswith("https://plansheet.example.com/addin/") for u in urls), urls


def test_the_served_functions_json_is_the_registrys_metadata(service: dict[str, Any]) -> None:
    status, body, _ = _get(f"{service['base']}/addin/functions.json")
    printed = subprocess.run(
        [*CLI, "functions", "metadata"], env=service["env"], check=True, capture_output=True, text=True
    )
    assert status == 200 and json.loads(body) == json.loads(printed.stdout)


# --- the add-in's Node tests, against this service ---------------------------------------------------


@pytest.mark.node
def test_the_addins_node_tests_pass_against_the_service(service: dict[str, Any], node: str) -> None:
    tests = sorted(str(p) for p in (ADDIN / "test").glob("*.test.mjs"))
    assert tests, "no Node tests in addin/officejs/test"
    fixture = {
        "team": TEAM,
        "other_team": OTHER_TEAM,
        "based_on": service["approved"][TEAM],
        "rows": edited(plan_rows(TEAM)),  # the approved plan with a note changed, as a marketer edits it
        "approved_rows": plan_rows(TEAM),  # the approved plan as it is: submitting it is `unchanged`
        # New plans the streaming test approves during its run (the other team's, so the
        # task pane's tests keep their team's approved plan).
        "other_based_on": service["approved"][OTHER_TEAM],
        "other_plans": [
            [
                as_json(x)
                for x in sample_lines(SCHEMA, OTHER_TEAM.split("-")[0], 6 + n, seed=11 + n, id_prefix="NA-ENTER")
            ]
            for n in range(2)
        ],
    }
    result = subprocess.run(
        # One file at a time: the streaming test changes the master while it runs.
        [node, "--test", "--test-concurrency=1", "--test-reporter=spec", *tests],
        cwd=ADDIN,
        env=_node_env(service, fixture),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"node --test failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    summary = dict(re.findall(r"^ℹ (tests|pass|fail|skipped) (\d+)$", result.stdout, re.MULTILINE))
    assert summary.get("fail") == "0" and summary.get("skipped") == "0", result.stdout  # every test ran
    assert int(summary["tests"]) >= 15, result.stdout


# --- the cross-host harness ------------------------------------------------------------------------


def run_harness(node: str, url: str, key: str, calls: list[dict[str, Any]]) -> list[Any]:
    result = subprocess.run(
        [node, str(HARNESS)],
        input=json.dumps({"url": url, "token": key, "calls": calls}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _as_cell(answer: dict[str, Any], scalar: bool) -> Any:
    """A functions:batch answer as the cell gets it from functions.js."""
    if "error" in answer:
        return {"error": answer["error"]["code"], "message": answer["error"]["message"]}
    grid = [["" if v is None else v for v in row] for row in answer["result"]]
    return grid[0][0] if scalar and len(grid) == 1 and len(grid[0]) == 1 else grid


@pytest.mark.node
def test_the_harness_answers_as_the_cells_would(service: dict[str, Any], node: str) -> None:
    base, key = service["base"], service["tokens"]["marketer"]
    plan = plan_rows(TEAM, blank_rows=0)
    calls = [
        {"name": "PS_PLANNED", "args": ["EMEA", "Q1"]},
        {"name": "PS_PLANNED", "args": ["EMEA"]},
        {"name": "PS_BUDGET", "args": ["EMEA", "FY", None]},
        {"name": "PS_LIVE_VARIANCE", "args": [TEAM, "2026-06-30"]},
        {"name": "PS_PLANNED", "args": [OTHER_TEAM]},  # not the marketer's team: #N/A
        {"name": "PS_PLANNED", "args": ["EMEA", "Q7"]},  # #VALUE!
        {"name": "PS_ROLLUP", "args": [plan, "channel"]},  # a matrix argument and result
    ]
    got = run_harness(node, base, key, calls)
    wrapped = [
        {"name": c["name"], "args": [a if isinstance(a, list) else [[a]] for a in c["args"] if a is not None]}
        for c in calls
    ]
    status, body = call(base, key, "POST", "/api/v1/functions:batch", {"calls": wrapped})
    assert status == 200
    expected = [_as_cell(a, c["name"] != "PS_ROLLUP") for a, c in zip(body["results"], calls, strict=True)]
    assert got == expected
    assert isinstance(got[0], int | float) and got[0] > 0  # JSON numbers: 120726.0 prints as 120726
    assert got[4]["error"] == "#N/A" and got[5]["error"] == "#VALUE!"

    [unknown] = run_harness(node, base, key, [{"name": "PS_NOPE", "args": ["EMEA"]}])
    assert unknown["error"] == "#NAME?"  # Excel's own answer for a function the add-in does not define
    refused = run_harness(node, base, "ps_not-a-token", calls[:2])
    assert all(r["error"] == "#N/A" and "sign in in the Plansheet task pane" in r["message"] for r in refused)
