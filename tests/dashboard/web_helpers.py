"""Signing in to the dashboard from a test: the users' password, the login form and its CSRF token."""

from __future__ import annotations

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
