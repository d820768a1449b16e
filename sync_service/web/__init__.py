"""The dashboard: server-rendered pages for finance and marketing ops, with the API's users and roles.

One module per domain (`planning`, `budget`, `master`, `spend`, `documents`, `account`), the sign-in in
`session`, all on the one blueprint of `base`; single sign-on in `sso`.

Session login with passwords hashed by werkzeug (scrypt), failed logins throttled per name and
per address, a session record per login that logout ends, a CSRF token on every form,
security headers on every page, and the same scoping as the API: a marketer sees their own
teams only. Charts are SVG drawn on the server, so pages load no script from anywhere.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from sync_service.web import account, budget, documents, imports, master, planning, scenarios, session, spend
from sync_service.web.base import bp

# Every module whose pages are on `bp` (importing one declares its pages).
PAGES = (session, planning, budget, scenarios, master, spend, documents, imports, account)


def blueprint() -> Blueprint:
    """The dashboard's blueprint, with every domain's pages declared on it."""
    assert all(module.bp is bp for module in PAGES)
    return bp


def init_limits(app: Flask) -> None:
    """The login throttles, on the app's limiter storage."""
    session.init_limits(app)
