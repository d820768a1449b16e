"""Signing in to the dashboard from a test: the users' password, the login form and its CSRF token."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sync_service.access.passwords import set_password
from tests.sync_service.service_helpers import approved_plan, make_service, settled_jobs
from tests.sync_service.spend_helpers import PLAN, imported

PASSWORD = "correct horse battery"


def login(client: Any, name: str, password: str = PASSWORD, target: str = "") -> Any:
    token = csrf(client.get("/login").get_data(as_text=True))
    query = f"?next={quote(target)}" if target else ""
    return client.post(f"/login{query}", data={"name": name, "password": password, "csrf_token": token})


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def signed_in(app: Any, name: str = "fiona") -> Any:
    """A test client of `app` (a Flask app, or a service holding one as `.app`) signed in as `name`."""
    client = getattr(app, "app", app).test_client()
    assert login(client, name).status_code == 302
    return client


def text(page: str) -> str:
    """The page's words as a reader sees them: no tags, one space between words."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@contextmanager
def spend_site(database_url: str, **config: Any) -> Iterator[Any]:
    """A service whose master holds an approved plan with its POs and invoices imported, and whose users
    maria, sam and fiona have passwords; its jobs settled and its connections closed afterwards."""
    s = make_service(database_url, **config)
    with s.store.transaction() as session:
        for name in ("maria", "sam", "fiona"):
            set_password(session, name, PASSWORD)
    approved_plan(s, PLAN)
    imported(s)
    try:
        yield s
    finally:
        settled_jobs(s.store)  # the pack a close builds, where the service builds one
        s.store.dispose()
