"""Cross-origin access to the spreadsheet functions and the add-in's files, from configured origins only.

A task pane served from one address may call a Plansheet service at another (the pane lets a
user type it), so the function endpoints and /addin/ answer CORS for the origins listed in
ALLOWED_ORIGINS and for no other. The API authenticates with bearer tokens, never cookies, so
no Access-Control-Allow-Credentials is ever sent, and a wildcard is refused at start-up.
Preflights are answered before any view runs: they carry no token and need none.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, current_app, request

from sheet_templates.errors import ConfigError

ORIGINS = "plansheet.allowed_origins"
METHODS = "GET, POST, OPTIONS"
HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"  # seconds a browser may reuse a preflight's answer
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$|^https?://\[[0-9a-f:.]+\](:\d{1,5})?$")


def parse_origins(value: Any) -> frozenset[str]:
    """The origins of ALLOWED_ORIGINS (comma-separated text, or a list), each checked to be scheme://host[:port]."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    origins = set()
    for item in items:
        origin = str(item).strip().rstrip("/").lower()
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"ALLOWED_ORIGINS has {str(item).strip()!r}; list origins such as "
                "https://plansheet.acme.com (scheme, host and port, no path, no wildcard), separated by commas"
            )
        origins.add(origin)
    return frozenset(origins)


def covered(path: str) -> bool:
    """True for the paths that answer CORS: the function endpoints, the version the live cells poll, /addin/."""
    return path in ("/api/v1/functions", "/api/v1/master/version") or path.startswith(
        ("/api/v1/functions:", "/api/v1/functions/", "/addin/")
    )


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin", "")
    return origin if origin.lower() in current_app.extensions[ORIGINS] else None


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if not covered(request.path) or not current_app.extensions[ORIGINS]:
        return None  # Flask's own OPTIONS answer, without any Access-Control-Allow-* header
    response = current_app.response_class(status=204, mimetype="text/plain")
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = METHODS
        response.headers["Access-Control-Allow-Headers"] = HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
    response.vary.add("Origin")
    return response


def _allow(response: Response) -> Response:
    if request.method == "OPTIONS" or not covered(request.path) or not current_app.extensions[ORIGINS]:
        return response
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
    # Always, once origins are configured: a cache must not give one origin's answer to another.
    response.vary.add("Origin")
    return response


def init_app(app: Flask) -> None:
    """Read ALLOWED_ORIGINS and answer CORS on `app`; call before the blueprints, so preflights come first."""
    app.extensions[ORIGINS] = parse_origins(app.config.get("ALLOWED_ORIGINS"))
    app.before_request(_preflight)
    app.after_request(_allow)
