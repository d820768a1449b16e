"""Signing in to the dashboard from a test: the users' password, the login form and its CSRF token."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

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
