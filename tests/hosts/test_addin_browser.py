"""The Office.js add-in in a real browser, under the headers the service really sends.

Playwright drives Debian's Chromium (as the dashboard's browser tests do). A page at Excel on
the web's own origin (https://excel.officeapps.live.com, answered by a route handler) frames the
task pane served by a real service on 127.0.0.1; office.js, asked for at Microsoft's CDN address,
is answered by a stand-in of the parts the add-in uses (office_standin.js). The pane must start
with no Content-Security-Policy complaint, every catalogue function must register, and a cell
must reach the service at ANOTHER address (a second process on the same database, so the call
is cross-origin and CORS decides) and show the master's number. The dashboard must still refuse
to be framed.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
HOSTS = Path(__file__).resolve().parent
EXCEL = "https://excel.officeapps.live.com"
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
TEAMS = ["EMEA-ENTERPRISE", "NA-ENTERPRISE"]
pytestmark = pytest.mark.chromium


class Services:
    """`pane`: serves the add-in (no CORS configured); `api`: the service the pane is pointed at."""

    def __init__(
        self, pane: str, api: str, finance: str, team: str, marketers: dict[str, str], approved: dict[str, int]
    ) -> None:
        self.pane, self.api, self.finance, self.team = pane, api, finance, team
        self.marketers = marketers  # team -> a marketer's token
        self.approved = approved  # team -> its approved submission


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("addin-browser")
    env = service_env(f"sqlite:///{folder / 'addin.db'}")
    env.pop("PLANSHEET_ALLOWED_ORIGINS", None)
    init(env)
    finance = token(env, "finance", "finance")
    pane_process, pane = start(env)
    api_process = None
    marketers: dict[str, str] = {}
    approved: dict[str, int] = {}
    try:
        for n, team in enumerate(TEAMS):
            marketer = marketers[team] = token(env, f"m{n}", "marketer", team)
            lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], 9, seed=n, id_prefix=team[:8])]
            status, body = call(pane, marketer, "POST", "/api/v1/submissions", {"team": team, "lines": lines})
            assert status == 201, body
            assert call(pane, finance, "POST", f"/api/v1/submissions/{body['id']}/approve", {})[0] == 200
            approved[team] = body["id"]
        api_process, api = start({**env, "PLANSHEET_ALLOWED_ORIGINS": f"{pane},{EXCEL}"})
        yield Services(pane, api, finance, TEAMS[0], marketers, approved)
    finally:
        stop(pane_process)
        if api_process is not None:
            stop(api_process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def catalogue(services: Services) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{services.pane}/addin/functions.json", timeout=30) as response:
        return json.load(response)["functions"]


# Every frame reports a CSP violation to the console, so the test sees those of framed pages too.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} in ${document.location.href}`);
});
"""


class Excel:
    """A browser tab at Excel on the web's origin that shows `addin_url` in an iframe."""

    def __init__(self, browser: Any, addin_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1100, "height": 800})
        # Excel's page is public and the service is on this machine: Chromium asks the user before such a
        # page may reach a local address (Local Network Access); the user says yes.
        self.context.grant_permissions(["local-network-access"], origin=EXCEL)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.office_js: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.add_init_script(REPORT_VIOLATIONS)
        host = (HOSTS / "office_host.html").read_text(encoding="utf-8").replace("{{ADDIN_URL}}", addin_url)
        self.page.route(f"{EXCEL}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=host))
        self.page.route("https://appsforoffice.microsoft.com/**", self._office_js)
        self.addin_url = addin_url

    def _office_js(self, route: Any) -> None:
        self.office_js.append(route.request.url)
        route.fulfill(
            status=200,
            content_type="application/javascript",
            body=(HOSTS / "office_standin.js").read_text(encoding="utf-8"),
        )

    def open(self) -> Any:
        self.page.goto(f"{EXCEL}/x/_layouts/xlviewerinternal.aspx")
        self.page.wait_for_load_state("load")
        frame = self.page.frame(url=self.addin_url)
        assert frame is not None, self.console
        return frame

    def csp_errors(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "CSP violation" in m or "frame" in m]

    def close(self) -> None:
        self.context.close()


def registered(frame: Any) -> list[str]:
    frame.wait_for_function("() => window.PlansheetFunctions !== undefined")
    frame.evaluate("() => window.PlansheetFunctions.ready")
    return sorted(frame.evaluate("() => Object.keys(window.OfficeStandin.associated)"))


def evaluate(frame: Any, catalogue: list[dict[str, Any]], name: str, *args: Any) -> dict[str, Any]:
    """A cell =PLANSHEET.<name>(args) as Excel evaluates it: through the function the add-in associated."""
    count = len(next(f for f in catalogue if f["id"] == name)["parameters"])
    return frame.evaluate("([id, args, n]) => window.OfficeStandin.evaluate(id, args, n)", [name, list(args), count])


def master_figure(services: Services, region: str) -> Decimal:
    status, body = call(services.api, services.finance, "GET", "/api/v1/rollup?by=region&period=year")
    assert status == 200, body
    return sum((Decimal(str(r["amount"])) for r in body["rows"] if r["region"] == region), Decimal(0))


def sign_in(frame: Any, services: Services) -> str:
    """What a user does in the pane: the other service's address, their token, their team; Save."""
    frame.fill("#service-url", services.api)
    frame.fill("#token", services.finance)
    frame.fill("#team", services.team)
    frame.click("#save")
    frame.wait_for_function("() => document.getElementById('status').textContent !== ''")
    return frame.inner_text("#status")


def test_the_task_pane_starts_framed_by_excel_and_its_cells_reach_another_service(
    services: Services, browser: Any, catalogue: list[dict[str, Any]], tmp_path: Path
) -> None:
    excel = Excel(browser, f"{services.pane}/addin/officejs/taskpane.html")
    try:
        frame = excel.open()
        assert excel.office_js == [OFFICE_JS]
        assert registered(frame) == sorted(f["id"] for f in catalogue)
        frame.evaluate("() => window.PlansheetTaskpane.started")
        assert frame.input_value("#service-url") == services.pane  # initialised: the address it came from

        assert sign_in(frame, services) == f"Signed in for team {services.team}."
        assert frame.evaluate("() => window.OfficeStandin.calculations") == ["Full"]  # Save recalculates
        assert frame.evaluate("() => window.OfficeStandin.settingsSaved") == {"plansheet.team": services.team}

        answer = evaluate(frame, catalogue, "PS_PLANNED", "EMEA")
        assert answer == {"value": pytest.approx(float(master_figure(services, "EMEA")), abs=0.005)}, answer
        assert answer["value"] > 0
        missing = evaluate(frame, catalogue, "PS_PLANNED", "MARS")
        assert missing["error"] == "#N/A" and "MARS" in missing["message"]
        excel.page.screenshot(path=tmp_path / "taskpane-in-excel.png", full_page=True)
        assert excel.csp_errors() == [], excel.console
    finally:
        excel.close()


def test_the_functions_page_registers_and_evaluates_in_the_shared_runtime(
    services: Services, browser: Any, catalogue: list[dict[str, Any]]
) -> None:
    excel = Excel(browser, f"{services.pane}/addin/officejs/functions.html")
    try:
        frame = excel.open()
        assert registered(frame) == sorted(f["id"] for f in catalogue)
        frame.evaluate(
            "([url, key]) => window.PlansheetFunctions.saveSettings({url, token: key})",
            [services.api, services.finance],
        )
        answer = evaluate(frame, catalogue, "PS_PLANNED", "NA")
        assert answer == {"value": pytest.approx(float(master_figure(services, "NA")), abs=0.005)}, answer
        variance = evaluate(frame, catalogue, "PS_VARIANCE", [[100.0], [50.0]], [[90.0], [60.0]])
        assert variance == {"value": [[10.0], [-10.0]]}, variance
        assert excel.csp_errors() == [], excel.console
    finally:
        excel.close()


def test_an_approval_shows_in_an_open_live_cell_by_itself(
    services: Services, browser: Any, catalogue: list[dict[str, Any]]
) -> None:
    """A streaming PS_PLANNED cell in the framed pane: it answers, then, with nobody recalculating,
    an approval at the service shows in it after the next version check; a cancelled cell stops."""
    excel = Excel(browser, f"{services.pane}/addin/officejs/functions.html")
    try:
        frame = excel.open()
        registered(frame)
        frame.evaluate(
            "([url, key]) => { window.PlansheetFunctions.options.versionPollMs = 300;"
            " return window.PlansheetFunctions.saveSettings({url, token: key}); }",
            [services.api, services.finance],
        )
        count = len(next(f for f in catalogue if f["id"] == "PS_PLANNED")["parameters"])
        assert next(f for f in catalogue if f["id"] == "PS_PLANNED")["options"] == {"stream": True}
        cell = frame.evaluate("([n]) => window.OfficeStandin.stream('PS_PLANNED', ['EMEA'], n)", [count])
        results = f"window.OfficeStandin.cells[{cell}].results"
        frame.wait_for_function(f"() => {results}.length >= 1")
        before = master_figure(services, "EMEA")
        assert frame.evaluate(f"() => {results}") == [{"value": pytest.approx(float(before), abs=0.005)}]
        frame.wait_for_function("() => window.PlansheetFunctions.poll.checks >= 2")  # unchanged: no new value
        assert frame.evaluate(f"() => {results}.length") == 1

        team = services.team
        lines = [as_json(x) for x in sample_lines(SCHEMA, "EMEA", 4, seed=99, id_prefix=team[:8])]
        plan = {"team": team, "lines": lines, "based_on": {"submission": services.approved[team]}}
        status, body = call(services.api, services.marketers[team], "POST", "/api/v1/submissions", plan)
        assert status == 201, body
        assert call(services.api, services.finance, "POST", f"/api/v1/submissions/{body['id']}/approve", {})[0] == 200
        after = master_figure(services, "EMEA")
        assert after != before

        frame.wait_for_function(f"() => {results}.length >= 2", timeout=10_000)
        assert frame.evaluate(f"() => {results}")[1:] == [{"value": pytest.approx(float(after), abs=0.005)}]
        assert frame.evaluate("() => window.PlansheetFunctions.poll.refreshes") == 1

        frame.evaluate(f"() => window.OfficeStandin.cancel({cell})")
        assert frame.evaluate("() => window.PlansheetFunctions.liveCells.size") == 0
        checks = frame.evaluate("() => window.PlansheetFunctions.poll.checks")
        frame.wait_for_timeout(1000)
        assert frame.evaluate("() => window.PlansheetFunctions.poll.checks") == checks  # no cell open, no checks
        assert excel.csp_errors() == [], excel.console
    finally:
        excel.close()


def test_a_service_that_does_not_list_the_panes_origin_is_refused_by_the_browser(
    services: Services, browser: Any, catalogue: list[dict[str, Any]]
) -> None:
    """The pane served by `api` (its origin listed nowhere) pointed at `pane` (no CORS configured)."""
    excel = Excel(browser, f"{services.api}/addin/officejs/functions.html")
    try:
        frame = excel.open()
        frame.evaluate(
            "([url, key]) => window.PlansheetFunctions.saveSettings({url, token: key})",
            [services.pane, services.finance],
        )
        answer = evaluate(frame, catalogue, "PS_PLANNED", "EMEA")
        assert answer["error"] == "#N/A" and "unreachable" in answer["message"], answer
        assert any("CORS" in m for m in excel.console), excel.console
    finally:
        excel.close()


def test_the_dashboard_refuses_to_be_framed(services: Services, browser: Any) -> None:
    excel = Excel(browser, f"{services.pane}/login")
    try:
        excel.page.goto(f"{EXCEL}/x/_layouts/xlviewerinternal.aspx")
        excel.page.wait_for_load_state("load")
        excel.page.wait_for_function("() => true")
        frame = excel.page.frames[1]
        frame.wait_for_load_state()
        assert frame.locator("input[name=password]").count() == 0
        refused = [m for m in excel.console if "Refused to display" in m or "frame-ancestors" in m]
        assert refused, excel.console
        with urllib.request.urlopen(f"{services.pane}/login", timeout=30) as response:
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    finally:
        excel.close()
