"""Every page of the dashboard, as finance and as a marketer, on a laptop and on a phone, in Chromium.

The pages are the ones the header's navigation links to (read from the page, so a page added to
the navigation later is checked too), a submission's page, the error page and the login page. On
each: axe-core (pinned in tests/accessibility by its package-lock.json) finds no serious or critical
violation; at 390 px the page never scrolls sideways; no visible text is an amount as a program writes
it ("1074039.30"), a cent integer or a month code ("m03"). A screenshot of each page at each width is
saved in the test's folder, and also in the folder PLANSHEET_SCREENSHOTS names, when it is set (so the
pictures in docs/images can be refreshed from them). Every failure is listed by page at the end.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.sync_service.live_server import as_json, call
from tests.system_deps import SETUP_HINT, in_ci, npm_ci, require_binary

pytestmark = [pytest.mark.chromium, pytest.mark.node]

SCHEMA = build_schema(load_config())
ACCESSIBILITY = Path(__file__).resolve().parents[1] / "accessibility"
AXE = ACCESSIBILITY / "node_modules" / "axe-core" / "axe.min.js"
NPM_HINT = f"sudo apt-get install --no-install-recommends nodejs npm ({SETUP_HINT})"
SERIOUS = ("serious", "critical")
SCREENSHOTS = "PLANSHEET_SCREENSHOTS"

# Text a person should never read. An amount as a program writes it: four or more digits with no
# thousands separator, then cents ("1074039.30"). A cent integer: a number of five or more digits
# standing alone (an amount or a count of 10,000 or more is written with separators; identifiers
# such as EMEA-0003, PO-10023 or #12 are joined to letters, a hyphen or #). A four-digit number
# standing alone that is not a year (1900-2099) is a count or amount without its separator. A month
# as its code ("m03").
NOT_A_NUMBER_NEAR = r"[\w#/:.,\-–]"
UNFORMATTED = {
    "an amount without thousands separators": re.compile(rf"(?<!{NOT_A_NUMBER_NEAR})\d{{4,}}\.\d\d(?!\d)"),
    "a cent integer or an unseparated number": re.compile(
        rf"(?<!{NOT_A_NUMBER_NEAR})(?:\d{{5,}}|(?!19\d\d|20\d\d)\d{{4}})(?!{NOT_A_NUMBER_NEAR}|\.\d)"
    ),
    "a month code": re.compile(r"\bm\d\d\b"),
    # A file path of the server's ("/srv/plansheet/org.toml"): nothing a reader can use, and not theirs to see.
    "a server path": re.compile(r"(?<![\w:/.])/(?:[\w.-]+/)+[\w.-]+\.(?:toml|py|db|json|xlsx)\b"),
}

# The visible text of the page, node by node, leaving out what is code by intent (a token, a formula).
VISIBLE_TEXT = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = node.textContent.trim();
    if (!text || !parent || parent.closest('code, pre, script, style, kbd, samp')) continue;
    if (!parent.checkVisibility({ visibilityProperty: true })) continue;
    const classes = (parent.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean);
    const where = parent.id ? '#' + parent.id : [parent.tagName.toLowerCase(), ...classes].join('.');
    found.push([where, text]);
  }
  return found;
}"""

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => ({
      target: n.target.join(' '),
      summary: (n.failureSummary || '').split('\\n').slice(1, 2).join(' ').trim(),
    })),
    count: v.nodes.length,
  }));
}"""


def flagged(text: str) -> list[str]:
    return [match.group(0) for pattern in UNFORMATTED.values() for match in pattern.finditer(text)]


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("Change 16740.00", ["16740.00"]),
        ("EMEA-0003 m11: 857500 → 1207500", ["857500", "1207500", "m11"]),
        ("473 won opportunities out of 3120", ["3120"]),
        ("€1,074,039.30 in Dec 2026, FY2027, Q3 FY2027", []),
        ("EMEA-0003, PO-10023, #12, submission 4, version 17, INV-4, 2026-02-01, 10:05 PM, 12.5%", []),
        ("(EUR 1,250.50) and 12,345 leads in 2027", []),
        (
            "not described by the organisation file /srv/app/sheet_templates/default_org.toml; it",
            ["/srv/app/sheet_templates/default_org.toml"],
        ),
        ("the organisation file default_org.toml, see https://example.com/docs/a.json and 1/2/3", []),
    ],
)
def test_what_counts_as_an_unformatted_figure(text: str, wrong: list[str]) -> None:
    assert sorted(flagged(text)) == sorted(wrong)


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's script, installed from tests/accessibility's lock file (`npm ci` when needed)."""
    require_binary("node", NPM_HINT)
    npm = require_binary("npm", NPM_HINT)
    npm_ci(npm, ACCESSIBILITY)
    if not AXE.is_file():
        message = f"axe-core is not installed at {AXE.relative_to(ACCESSIBILITY.parents[1])}; run: make test"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


def _post_file(base: str, token: str, path: str, data: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.fixture(scope="module")
def content(site: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """A service with plans approved for two regions, actual spend against them, and a plan waiting for finance."""
    base, tokens = site
    lines: dict[str, list[dict[str, Any]]] = {}
    approved: dict[str, int] = {}
    for who, team, seed in (("maria", "EMEA-ENTERPRISE", 11), ("sam", "NA-ENTERPRISE", 12)):
        lines[team] = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], 8, seed=seed)]
        status, body = call(base, tokens[who], "POST", "/api/v1/submissions", {"team": team, "lines": lines[team]})
        assert status == 201, body
        approved[team] = body["id"]
        status, body = call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{body['id']}/approve", {})
        assert status == 200, body
    rows = "".join(f"{x['line_id']},{1000 + 37 * i}.25\n" for i, x in enumerate(lines["EMEA-ENTERPRISE"][:5]))
    status, answer = _post_file(
        base, tokens["fiona"], "/api/v1/actuals?filename=actuals.csv", f"Line ID,Amount\n{rows}".encode()
    )
    assert status in (200, 201), answer
    changed = [dict(x) for x in lines["EMEA-ENTERPRISE"]]
    month = next(k for k in changed[0] if re.fullmatch(r"m\d\d", k) and changed[0][k])
    changed[0][month] = round(float(changed[0][month]) * 1.4 + 2500, 2)
    changed[1]["campaign"] = f"{changed[1]['campaign']} (extended)"
    change = {"team": "EMEA-ENTERPRISE", "lines": changed, "based_on": {"submission": approved["EMEA-ENTERPRISE"]}}
    status, body = call(base, tokens["maria"], "POST", "/api/v1/submissions", change)
    assert status == 201, body
    return {"pending": body["id"]}


def _slug(path: str) -> str:
    parts = urlsplit(path)
    name = parts.path.strip("/").replace("/", "-") or "plan-status"
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name)


def _save(page: Any, name: str, tmp_path: Path) -> None:
    page.screenshot(path=tmp_path / name, full_page=True)
    folder = os.environ.get(SCREENSHOTS)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(folder) / name, full_page=True)


def _navigation(page: Any) -> list[str]:
    """The pages the header links to, in its order (read from the page, so new pages are covered)."""
    hrefs = page.eval_on_selector_all("header nav a[href]", "links => links.map(a => a.getAttribute('href'))")
    return list(dict.fromkeys(hrefs))


def _is_page(page: Any, base: str, href: str) -> bool:
    """True for a page (HTML), not a download such as the master workbook."""
    answer = page.request.get(base + href, max_redirects=0)
    return answer.headers.get("content-type", "").startswith("text/html")


def check_page(page: Any, axe: str, width: int) -> list[str]:
    """What is wrong with the page now open: axe's serious violations, sideways scrolling, unformatted figures."""
    problems: list[str] = []
    page.evaluate(axe)  # evaluated through the browser's debugging protocol, so the page's CSP still holds for it
    for v in page.evaluate(RUN_AXE):
        if v["impact"] in SERIOUS:
            where = "; ".join(f"{n['target']} ({n['summary']})" if n["summary"] else n["target"] for n in v["nodes"])
            more = f" and {v['count'] - len(v['nodes'])} more" if v["count"] > len(v["nodes"]) else ""
            problems.append(f"axe {v['impact']} {v['id']}: {v['help']} at {where}{more}")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if width <= PHONE["width"] and scroll > width:
        problems.append(f"scrolls sideways at {width} px: the page is {scroll} px wide")
    seen: set[tuple[str, str]] = set()
    for where, text in page.evaluate(VISIBLE_TEXT):
        for what, pattern in UNFORMATTED.items():
            for match in pattern.finditer(text):
                if (what, match.group(0)) not in seen and len(seen) < 40:
                    seen.add((what, match.group(0)))
                    problems.append(f"{what}: {match.group(0)!r} in {where}: {text[:80]!r}")
    return problems


def visit(page: Any, url: str, axe: str, width: int, shot: str, tmp_path: Path, status: int = 200) -> list[str]:
    """Open `url`, check it, save it; a script the page's CSP refused or a file of the page not found is a problem."""
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"browser console: {message.text}")

    def loaded(answer: Any) -> None:
        if answer.request.resource_type != "document" and answer.status >= 400:
            errors.append(f"{answer.request.resource_type} {answer.url} answered {answer.status}")

    page.on("console", console)
    page.on("response", loaded)
    response = page.goto(url)
    page.wait_for_load_state("load")
    page.remove_listener("console", console)
    page.remove_listener("response", loaded)
    problems = (
        [] if response is not None and response.status == status else [f"answered {response and response.status}"]
    )
    problems += check_page(page, axe, width)
    _save(page, shot, tmp_path)
    return problems + errors


def report(failures: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}:\n" + "\n".join(f"  - {p}" for p in problems) for page, problems in failures.items())


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1440px", "390px"])
@pytest.mark.parametrize("name", ["fiona", "maria"])
def test_every_page_is_accessible_holds_its_width_and_formats_its_figures(
    site, browser, content, axe_source: str, name: str, viewport: dict[str, int], tmp_path: Path
) -> None:
    base, _ = site
    width = viewport["width"]
    page = log_in(browser, base, name, viewport)
    pages = [href for href in _navigation(page) if _is_page(page, base, href)]
    assert len(pages) >= 5, pages  # the status page, approvals, master, ... at the least
    extra = [(f"/submissions/{content['pending']}", 200), ("/no-such-page", 404)]
    failures: dict[str, list[str]] = {}
    for href, status in [(href, 200) for href in pages] + extra:
        shot = f"{name}-{_slug(href) if status == 200 else 'error-page'}-{width}.png"
        problems = visit(page, base + href, axe_source, width, shot, tmp_path, status)
        if problems:
            failures[href] = problems
    visited = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(visited) == len(pages) + len(extra), visited
    assert not failures, f"{name} at {width} px:\n{report(failures)}"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1440px", "390px"])
def test_the_pages_a_signed_out_visitor_sees(site, browser, axe_source: str, viewport, tmp_path: Path) -> None:
    base, _ = site
    width = viewport["width"]
    page = browser.new_context(viewport=viewport).new_page()
    failures: dict[str, list[str]] = {}
    for path, status in (("/login", 200), ("/no-such-page", 404)):
        problems = visit(
            page, base + path, axe_source, width, f"signed-out-{_slug(path)}-{width}.png", tmp_path, status
        )
        if problems:
            failures[path] = problems
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.locator("a", has_text="Sign in").get_attribute("href") == "/login"
    assert not failures, report(failures)


def test_the_header_fits_on_one_line_at_1280_and_its_menu_holds_on_a_phone(
    site, browser, content, axe_source: str, tmp_path: Path
) -> None:
    base, _ = site
    page = log_in(browser, base, "fiona", {"width": 1280, "height": 800})
    entries = page.locator("header nav > a, header nav > details > summary")
    assert entries.count() >= 3 and all(entry.is_visible() for entry in entries.all())  # no menu to open here
    tops = page.eval_on_selector_all(
        "header > *:not(.skip-link)", "items => items.map(e => Math.round(e.getBoundingClientRect().top))"
    )
    heights = page.eval_on_selector_all("header > *", "items => items.map(e => e.getBoundingClientRect().height)")
    header = page.eval_on_selector("header", "h => h.getBoundingClientRect().height")
    assert header <= max(heights) + 24, f"the header wraps at 1280 px: {header} px high, items at {tops}"
    _save(page, "header-1280.png", tmp_path)

    page.click("header nav > details > summary >> nth=0")
    page.click("header nav > details > summary >> nth=1")  # one group open at a time: no menus overlapping
    assert page.locator("header nav > details[open]").count() == 1

    phone = log_in(browser, base, "fiona", PHONE)
    phone.click("header .menu > summary")
    failures: dict[str, list[str]] = {}
    for group in phone.locator("header nav > details > summary").all():
        group.click()
        problems = check_page(phone, axe_source, PHONE["width"])
        _save(phone, f"header-menu-{group.inner_text().lower().replace(' ', '-')}-390.png", tmp_path)
        if problems:
            failures[f"/ (menu open at {group.inner_text()})"] = problems
    assert not failures, report(failures)


@pytest.fixture(autouse=True)
def _close_contexts(browser) -> Iterator[None]:
    """Each test's pages are closed with it (the browser stays for the module)."""
    yield
    for context in browser.contexts:
        context.close()
