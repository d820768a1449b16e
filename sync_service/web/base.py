"""What every dashboard page shares: the blueprint, the store and schema, the login guard, error pages and headers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
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
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from sheet_templates.formatting import DEFAULT_LOCALE, Formats
from sync_service.integrations.google import sync as sheets_sync
from sync_service.platform.context import schema as app_schema
from sync_service.platform.errors import ServiceError, rule_words
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
        "navigation": _navigation(g.get("web_user")),
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


def formats() -> Formats:
    """The formatting of numbers, money and dates in the service's locale (the `LOCALE` setting)."""
    return Formats(current_app.config.get("LOCALE", DEFAULT_LOCALE))


def _calendar() -> Any:
    try:
        return app_schema().calendar
    except ServiceError:
        return app_schema(current_app).calendar


@bp.app_template_filter("money")
def _money(cents: Any, currency: str | None = None, code: bool = False) -> str:
    """Cents in `currency` (the reporting currency unless named), as finance writes money."""
    return formats().money(cents, currency or _calendar_currency(), code=code)


@bp.app_template_filter("amount")
def _amount(cents: Any, currency: str | None = None) -> str:
    """Cents as a number in the currency's decimals, for a column whose header names the currency."""
    return formats().amount(cents, currency or _calendar_currency())


def _calendar_currency() -> str:
    return str(app_schema(current_app).config.reporting_currency)


@bp.app_template_filter("count")
def _count(value: Any) -> str:
    return formats().count(value)


@bp.app_template_filter("ratio")
def _ratio(value: Any, places: int = 2) -> str:
    return formats().ratio(value, places)


@bp.app_template_filter("percent")
def _percent(value: Any, places: int = 1) -> str:
    return formats().percent(value, places)


@bp.app_template_filter("month")
def _month(key: Any) -> str:
    """A month key ("m12") of the page's fiscal year by name ("Dec 2026"); a quarter key as "Q3 FY2027"."""
    return formats().period(str(key), _calendar())


@bp.app_template_filter("date")
def _date(day: Any) -> str:
    return formats().date(day)


@bp.app_template_filter("moment")
def _moment(when: Any) -> str:
    return formats().moment(when)


@bp.app_template_filter("rule")
def _rule(rule: Any) -> str:
    """A rule's id in words (the reader's and the service's)."""
    return rule_words(str(rule))


# The navigation: (group, [(label, endpoint, who)]); "who" is the roles that see the entry (None: everyone).
# A group of one entry is a plain link; an endpoint not declared (yet) is left out.
NAVIGATION: tuple[tuple[str, tuple[tuple[str, str, tuple[Role, ...] | None], ...]], ...] = (
    (
        "Plans",
        (
            ("Plan status", "web.status", None),
            ("Submit a plan", "web.upload_plan", (Role.MARKETER, Role.FINANCE)),
            ("Approvals", "web.approvals_page", (Role.MARKETER, Role.FINANCE)),
            ("Versions and audit", "web.versions", None),
        ),
    ),
    (
        "Budget",
        (
            ("Master budget", "web.master", None),
            ("Budget and reforecast", "web.budget_page", (Role.MARKETER, Role.FINANCE)),
            ("Allocations", "web.allocations_page", (Role.FINANCE,)),
            ("Scenarios", "web.scenarios_page", (Role.FINANCE,)),
            ("Transfers", "web.transfers_page", (Role.MARKETER, Role.FINANCE)),
            ("Months and baselines", "web.periods_page", (Role.FINANCE,)),
            ("Master workbook", "web.download_master", None),
        ),
    ),
    (
        "Spend and results",
        (
            ("Spend control", "web.spend_page", (Role.MARKETER, Role.FINANCE)),
            ("Management packs", "web.packs_page", (Role.MARKETER, Role.FINANCE)),
            ("Imports", "web.imports_page", (Role.FINANCE,)),
            ("Plan vs actual", "web.actuals", None),
            ("Performance", "web.performance_page", None),
            ("Year over year", "web.year_over_year_page", None),
        ),
    ),
    (
        "Account",
        (
            ("Tokens and add-ins", "web.addin_token", None),
            ("Jobs", "web.job_list", None),
        ),
    ),
)


def _navigation(user: Any) -> list[dict[str, Any]]:
    """The navigation the user sees: each group's entries they may open, the current page marked."""
    if user is None:
        return []
    declared = current_app.view_functions
    groups = []
    for group, entries in NAVIGATION:
        links = [
            {"label": label, "href": url_for(endpoint), "current": request.endpoint == endpoint}
            for label, endpoint, who in entries
            if endpoint in declared
            and (who is None or user.role in who)
            and not (endpoint == "web.year_over_year_page" and len(app_schema(current_app).config.years) < 2)
        ]
        if links:
            groups.append({"label": group, "links": links, "current": any(link["current"] for link in links)})
    return groups


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


# What each error means, in words a person reads: (heading, what happened and what to do).
ERROR_WORDS: dict[int, tuple[str, str]] = {
    400: (
        "Plansheet could not read that request",
        "The page sent something Plansheet could not use, often a form left open for a long time. "
        "Go back, reload the page and try again.",
    ),
    403: (
        "You cannot open this page",
        "Your role does not give you access to it. If you need it for your work, ask finance or the "
        "person who runs Plansheet for you.",
    ),
    404: (
        "Page not found",
        "There is nothing at this address. If you typed it, check the spelling; if you followed a link, "
        "what it pointed at may have moved or may no longer be there.",
    ),
    405: (
        "This page cannot do that",
        "The address is right, but not for what the browser asked of it: a form's address opened on its "
        "own, for example. Go back and use the page's own buttons.",
    ),
    413: (
        "The file is too large",
        "Plansheet takes files and forms up to {limit}. Make the file smaller (remove unused sheets or "
        "rows, or save it without images) and send it again.",
    ),
    429: ("Too many tries", "Wait a few minutes, then try again."),
    500: (
        "Something went wrong",
        "Plansheet could not show this page because of an error on the server. The error has been "
        "logged for whoever runs Plansheet. Try again in a moment; if it keeps happening, tell them "
        "what you were doing.",
    ),
    503: ("Plansheet is not available just now", "Try again in a few seconds."),
}


def error_response(status: int, said: str | None = None) -> Response:
    """The dashboard's error page for `status`, with what the error says to a person (never a traceback).

    Signed in or not, it explains the error in words and offers a way back; if even this page
    cannot be drawn (the database gone, say), a plain page with the same words is sent.
    """
    heading, explanation = ERROR_WORDS.get(status, ERROR_WORDS[500 if status >= 500 else 400])
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    explanation = explanation.format(limit=f"{limit / 2**20:g} MB" if limit else "the size the server allows")
    said = said[:1].upper() + said[1:] if said else None
    try:
        back = _way_back()
        page = render_template(
            "error.html", status=status, heading=heading, explanation=explanation, said=said, back=back
        )
    except Exception:  # the error page must not fail in turn: the plain words instead
        current_app.logger.exception("the error page could not be drawn")
        page = f"<!doctype html><title>{escape(heading)}</title><h1>{escape(heading)}</h1><p>{escape(explanation)}</p>"
    return current_app.response_class(page, status=status, mimetype="text/html")


def _way_back() -> str | None:
    """The page the visitor came from on this site, when there is one and it is not this one."""
    came_from = request.referrer
    if not came_from:
        return None
    parts = urlsplit(came_from)
    if parts.netloc != request.host or parts.path == request.path:
        return None
    return urlunsplit(("", "", parts.path, parts.query, ""))


@bp.errorhandler(HTTPException)
def error_page(error: HTTPException) -> ResponseReturnValue:
    """The dashboard's one error page (the single sign-on's pages use it too), with the error's own headers."""
    status = error.code or 500
    said = None if status == 500 or error.description == type(error).description else error.description
    response = error_response(status, said)
    response.headers.update({k: v for k, v in error.get_headers() if k.lower() != "content-type"})
    return response
