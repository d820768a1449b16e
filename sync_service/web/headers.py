"""The security headers of each area of the service: the dashboard's pages and the Office add-in's pages.

The dashboard loads no script from anywhere and refuses every frame. The add-in's pages are
framed by Excel on the web and load office.js from Microsoft's CDN, so they allow exactly
that: the CDN's scripts and framing by the Office hosts Microsoft serves Excel from, with no
X-Frame-Options (it cannot name several origins, and DENY would override frame-ancestors in
old browsers). Every answer, HTML or not, carries nosniff.
"""

from __future__ import annotations

from enum import StrEnum

from flask import Response

# Where Office on the web shows add-ins: the add-in's iframe has one of these as its ancestors.
OFFICE_HOSTS = (
    "https://*.officeapps.live.com",
    "https://*.office.com",
    "https://*.office365.com",
    "https://*.sharepoint.com",
    "https://*.microsoft365.com",
    "https://*.cloud.microsoft",
)
# office.js and the host-specific scripts it loads (excel-web-16.00.js, its strings) come from the
# CDN; the Microsoft Ajax library some versions pull in comes from ajax.aspnetcdn.com.
OFFICE_SCRIPTS = ("https://appsforoffice.microsoft.com", "https://ajax.aspnetcdn.com")


class Area(StrEnum):
    DASHBOARD = "dashboard"
    ADDIN = "addin"


def _csp(directives: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


_COMMON = {
    "default-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "style-src": ("'self'", "'unsafe-inline'"),  # style attributes only; no inline script anywhere
    "script-src": ("'self'",),
    "frame-ancestors": ("'none'",),
    "form-action": ("'self'",),
    "base-uri": ("'none'",),
}

POLICIES: dict[Area, dict[str, str]] = {
    Area.DASHBOARD: {
        "Content-Security-Policy": _csp(_COMMON),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    },
    Area.ADDIN: {
        "Content-Security-Policy": _csp(
            {
                **_COMMON,
                "img-src": ("'self'", "data:", *OFFICE_SCRIPTS),
                "script-src": ("'self'", *OFFICE_SCRIPTS),
                # The pane may be pointed at another Plansheet service (its own CORS decides), and
                # office.js reports to Microsoft; plain http only to a service on this machine.
                "connect-src": ("'self'", "https:", "http://localhost:*", "http://127.0.0.1:*"),
                "frame-ancestors": OFFICE_HOSTS,
            }
        ),
        "Referrer-Policy": "same-origin",
    },
}


def area_of(path: str) -> Area:
    """The area a request path belongs to: the add-in's files under /addin/, the dashboard otherwise."""
    return Area.ADDIN if path.startswith("/addin/") else Area.DASHBOARD


def apply(response: Response, path: str) -> Response:
    """Set nosniff on every answer and the area's page policy on HTML answers."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        policy = POLICIES[area_of(path)]
        for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
            response.headers.pop(name, None)
        response.headers.update(policy)
    return response
