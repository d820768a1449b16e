"""What every dashboard page shares: the blueprint, the store and schema, the login guard, error pages and headers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from sync_service.integrations.google import sync as sheets_sync
from sync_service.platform.context import schema as app_schema
from sync_service.platform.errors import ServiceError
from sync_service.platform.storage import Role
from sync_service.web import headers

bp = Blueprint("web", __name__, template_folder="templates")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def follow_ups() -> dict[str, Any]:
    """The same follow-ups of a decision as the API runs (from the configuration as it is now)."""
    return sheets_sync.follow_ups_for(current_app)


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    sso = current_app.extensions.get("plansheet.sso")
    base = app_schema(current_app)
    try:
        active = app_schema().calendar.year
    except ServiceError:  # a year the organisation does not describe: the page says so, the switcher offers the rest
        active = None
    return {
        "user": g.get("web_user"),
        "csrf_token": session["csrf"],
        "Role": Role,
        "sso_name": sso.provider_name if sso is not None else None,
        "year_links": _year_links(base.config.years),  # the same page in each fiscal year (?year=)
        "active_year": active,
    }


def _year_links(years: tuple[int, ...]) -> list[tuple[int, str]]:
    """(year, the page asked for, about that year) for each year, when there are several and the page is a GET."""
    if len(years) < 2 or request.endpoint is None or request.method != "GET" or request.endpoint == "static":
        return []
    args = {**(request.view_args or {}), **{k: v for k, v in request.args.items() if k != "year"}}
    return [(y, url_for(request.endpoint, **args, year=y)) for y in years]


@bp.url_defaults
def _keep_the_year(endpoint: str, values: dict[str, Any]) -> None:
    """Every dashboard link and form keeps the fiscal year the page is about, so a click never changes it."""
    if "year" not in values and has_request_context() and "year" in request.args:
        values["year"] = request.args["year"]


@bp.after_app_request
def _security_headers(response: Any) -> Any:
    return headers.apply(response, request.path)


def login_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if g.get("web_user") is None:
            return redirect(url_for("web.login", next=request.path))
        if g.web_user.role == Role.ADMIN:
            abort(403, "the dashboard shows plans; admins manage users and tokens")
        return view(*args, **kwargs)

    return wrapped


@bp.errorhandler(HTTPException)
def error_page(error: HTTPException) -> ResponseReturnValue:
    """The dashboard's one error page (the single sign-on's pages use it too)."""
    return render_template("error.html", error=error), error.code or 500
