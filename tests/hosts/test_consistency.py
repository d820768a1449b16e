"""Every host gives the same answer: xlwings (desktop Excel), the HTTP endpoint, Office.js and Apps Script.

One real service on 127.0.0.1 with approved plans; the same calls go through the service's
batch endpoint, the xlwings UDFs (which call the service for the live functions), the
Office.js shim and the Apps Script shim (both under Node with their hosts stubbed, making
real HTTP calls). Values must be equal, errors must carry the same Excel error code.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.addin.xlwings_harness import MISSING, call_like_excel, udfs, xlwings_windows  # noqa: F401
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
HOSTS = Path(__file__).resolve().parent
TEAMS = ["EMEA-ENTERPRISE", "EMEA-SMB", "NA-ENTERPRISE"]


def _plan() -> list[list[Any]]:
    """A small Plan table as a host passes a range: header row, then lines (amounts as numbers, dates as text)."""
    rows = [[c.label for c in SCHEMA.input_columns]]
    for line in sample_lines(SCHEMA, "EMEA", 4, seed=21):
        values = as_json(line)
        rows.append(["" if values.get(c.name) is None else values[c.name] for c in SCHEMA.input_columns])
    return rows


PLAN = _plan()
# (name, arguments as a cell passes them: a single value, or a range as rows)
CALLS: list[tuple[str, list[Any]]] = [
    ("PS_PLANNED", ["EMEA"]),
    ("PS_PLANNED", ["EMEA", "Q2"]),
    ("PS_PLANNED", ["EMEA-ENTERPRISE", "m03", "Events"]),
    ("PS_PLANNED", ["NA", "FY", "", ""]),
    ("PS_ACTUAL", ["EMEA"]),
    ("PS_BUDGET", ["EMEA", "Q1"]),
    ("PS_BUDGET", ["NA"]),
    ("PS_LIVE_VARIANCE", ["EMEA", "2026-09-30"]),
    ("PS_REMAINING_LIVE", ["NA"]),
    ("PS_PLANNED", ["MARS"]),  # #N/A: no such region
    ("PS_PLANNED", ["EMEA", "Q9"]),  # #VALUE!: no such period
    ("PS_VARIANCE", [[[100.0], [50.0]], [[90.0], [60.0]]]),
    ("PS_VARIANCE", [[[100.0], [50.0]], [[90.0], [60.0]], "flag"]),
    ("PS_VARIANCE_PCT", [[[100.0], [0.0]], [[90.0], [10.0]]]),
    ("PS_FX", [[[100.0], [250.5]], [["EUR"], ["GBP"]]]),
    ("PS_PACING", [[[50.0]], [[100.0]], "2026-08-01"]),
    ("PS_REMAINING", [[[1000.0]], [[200.0]], [[300.5]]]),
    ("PS_VALIDATE", [PLAN]),
    ("PS_ROLLUP", [PLAN, "region,channel", "quarter"]),
    ("PS_KPI", [PLAN, "region"]),
    ("PS_FORECAST", [PLAN, "run_rate", "2026-08-01"]),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("hosts")
    env = service_env(f"sqlite:///{folder / 'hosts.db'}")
    init(env)
    finance = token(env, "finance", "finance")
    process, base = start(env)
    try:
        for n, team in enumerate(TEAMS):
            marketer = token(env, f"m{n}", "marketer", team)
            lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], 15, seed=n, id_prefix=team[:8])]
            status, body = call(base, marketer, "POST", "/api/v1/submissions", {"team": team, "lines": lines})
            assert status == 201, body
            assert call(base, finance, "POST", f"/api/v1/submissions/{body['id']}/approve", {})[0] == 200
        yield base, finance
    finally:
        stop(process)


def grid(value: Any) -> list[list[Any]]:
    return value if isinstance(value, list) else [[value]]


def normal(result: Any) -> tuple[str, Any]:
    """("value", rows rounded to the cent) or ("error", Excel error code), whatever the host's own form."""
    if isinstance(result, dict) and "error" in result:
        error = result["error"]
        text = error.get("code", "") if isinstance(error, dict) else f"{error} {result.get('message', '')}"
        return "error", re.search(r"#[A-Z/0]+[!?]?", text).group(0)
    if isinstance(result, dict) and "result" in result:
        result = result["result"]
    rows = grid(result)
    if len(rows) == 1 and len(rows[0]) == 1 and isinstance(rows[0][0], str) and rows[0][0].startswith("#"):
        return "error", rows[0][0].split()[0].rstrip(":")
    return "value", [[round(v, 2) if isinstance(v, float) else (None if v == "" else v) for v in row] for row in rows]


def http_answers(base: str, finance: str) -> list[tuple[str, Any]]:
    calls = [{"name": n, "args": [grid(a) for a in args]} for n, args in CALLS]
    status, body = call(base, finance, "POST", "/api/v1/functions:batch", {"calls": calls})
    assert status == 200, body
    return [normal(r) for r in body["results"]]


def node(script: str, base: str, finance: str, calls: list[dict[str, Any]]) -> list[Any]:
    done = subprocess.run(
        ["node", str(HOSTS / script)],
        input=json.dumps({"url": base, "token": finance, "calls": calls}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_xlwings_answers_as_the_service(
    service: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    xlwings_windows: Any,  # noqa: F811
) -> None:
    base, finance = service
    monkeypatch.setenv("PLANSHEET_SERVICE_URL", base)
    monkeypatch.setenv("PLANSHEET_TOKEN", finance)
    bound = udfs()
    answers = []
    for name, args in CALLS:
        spec = bound[name].__xlfunc__["args"]
        excel_args = [tuple(tuple(r) for r in a) if isinstance(a, list) else a for a in args]
        excel_args += [MISSING] * (len(spec) - len(excel_args))
        answers.append(normal(call_like_excel(bound[name], *excel_args)))
    assert answers == http_answers(base, finance)


@pytest.mark.node
def test_office_js_answers_as_the_service(service: tuple[str, str]) -> None:
    base, finance = service
    calls = [{"name": n, "args": args} for n, args in CALLS]
    answers = [normal(r) for r in node("officejs_harness.mjs", base, finance, calls)]
    assert answers == http_answers(base, finance)


@pytest.mark.node
def test_apps_script_answers_as_the_service(service: tuple[str, str]) -> None:
    base, finance = service
    calls = [{"name": n, "args": args} for n, args in CALLS]
    answers = [normal(r) for r in node("apps_script_harness.js", base, finance, calls)]
    assert answers == http_answers(base, finance)


def test_the_live_answers_are_real_figures(service: tuple[str, str]) -> None:
    """The comparison above is not between empty answers: the live calls hold money, the bad ones errors."""
    answers = http_answers(*service)
    assert all(kind == "value" for kind, _ in answers[:9])
    assert sum(1 for _, rows in answers[:9] if rows[0][0]) >= 8  # money, not zeros (one filter may match nothing)
    assert [a[1] for a in answers[9:11]] == ["#N/A", "#VALUE!"]
