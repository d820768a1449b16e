"""The dashboard in a real browser: Debian's Chromium through Playwright, against the real service on 127.0.0.1.

`site` starts the service once per test module on a fresh SQLite database with three users who
have passwords (maria, a marketer of EMEA-ENTERPRISE; sam, of NA-ENTERPRISE; fiona, finance) and
gives (base address, their API tokens); `browser` is one Chromium per module; `log_in` opens a
page signed in as a user, at a viewport width (1440 px for a laptop, 390 px for a phone).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.sync_service.live_server import init, plansheet, service_env, start, stop, token

PASSWORD = "correct horse battery"
LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("dashboard")
    env = {**service_env(f"sqlite:///{folder / 'web.db'}"), "PLANSHEET_SECRET_KEY": "browser-test"}
    init(env)
    tokens = {
        "maria": token(env, "maria", "marketer", "EMEA-ENTERPRISE"),
        "sam": token(env, "sam", "marketer", "NA-ENTERPRISE"),
        "fiona": token(env, "fiona", "finance"),
    }
    for name in tokens:
        plansheet(env, "user", "password", "--name", name, given=PASSWORD + "\n")
    process, base = start(env, timeout=90)  # a loaded two-core machine can take half a minute to start it
    try:
        yield base, tokens
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


def log_in(browser: object, base: str, name: str, viewport: dict[str, int] | None = None):
    """A new page signed in as `name` through the login form, on the plan status page."""
    page = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page
