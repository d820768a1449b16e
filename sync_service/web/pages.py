"""The dashboard: server-rendered pages for finance and marketing ops, with the API's users and roles.

Session login with passwords hashed by werkzeug (scrypt), failed logins throttled per name and
per address, a session record per login that logout ends, a CSRF token on every form,
security headers on every page, and the same scoping as the API: a marketer sees their own
teams only. Charts are SVG drawn on the server, so pages load no script from anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import secrets
import tempfile
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from markupsafe import Markup, escape
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from addin.forecast import closed_months, elapsed_fraction, pacing
from addin.rollup import rollup
from sheet_templates.calendar import QUARTERS
from sheet_templates.errors import ConfigError
from sheet_templates.money import display_money
from sync_service.access.auth import can_see, create_addin_token
from sync_service.access.passwords import password_matches
from sync_service.budget import baselines, transfers
from sync_service.documents.master_workbook import master_workbook_bytes
from sync_service.integrations.google import sync as sheets_sync
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.master.allocations import allocation_of
from sync_service.master.grouping import groups
from sync_service.planning import cycles, submissions, workflow
from sync_service.platform import jobs
from sync_service.platform.context import SCHEMA, STORE
from sync_service.platform.errors import NotFound, ServiceError
from sync_service.platform.storage import Decision, Role, Store, Submission, Team, User, WebSession, utcnow
from sync_service.spend import accruals
from sync_service.spend import report as spend_report
from sync_service.web import headers
from sync_service.web.refusals import flashed_refusal, refused_as_http

bp = Blueprint("web", __name__, template_folder="templates")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _store() -> Store:
    return current_app.extensions[STORE]


def follow_ups() -> dict[str, Any]:
    """The same follow-ups of a decision as the API runs (from the configuration as it is now)."""
    return sheets_sync.follow_ups_for(current_app)


def _schema() -> Any:
    return current_app.extensions[SCHEMA]


# --- session, CSRF, headers --------------------------------------------------------------------------


@bp.before_app_request
def _load_user() -> None:
    g.web_user = None
    user_id = session.get("user_id")
    if user_id is not None:
        with _store().reading() as s:
            user = s.get(User, user_id)
            record = s.get(WebSession, session["sid"]) if isinstance(session.get("sid"), str) else None
            live = record is not None and record.ended_at is None and record.user_id == user_id
            fresh = time.time() - session.get("at", 0) < SESSION_HOURS * 3600
            if user is None or not live or not fresh or session.get("pw") != _fingerprint(user):
                session.clear()  # logged out, expired, or the password changed since this login
                return
            user.teams  # noqa: B018 - loaded while the session is open
            g.web_user = user


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
            abort(400, "the form has expired; reload the page and try again")


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    sso = current_app.extensions.get("plansheet.sso")
    return {
        "user": g.get("web_user"),
        "csrf_token": session["csrf"],
        "Role": Role,
        "sso_name": sso.provider_name if sso is not None else None,
    }


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


# --- login throttling ------------------------------------------------------------------------------
# Failed logins are counted per user name (known or not, so the answer tells nothing about who
# exists) and per client address. A login over either limit is answered 429 before its password
# is read. Counts live in the memory of the process, or in Redis (REDIS_URL) for many workers;
# the app factory points the limiter at its storage with `init_limits`.

limiter = Limiter(
    get_remote_address,
    strategy="moving-window",  # "at most 5 in any 15 minutes", not 5 per clock-aligned window
    fail_on_first_breach=False,  # every limit is looked at, so Retry-After is the latest of those over
    in_memory_fallback_enabled=True,  # Redis down: each worker counts alone rather than logins failing
)


def _login_name() -> str:
    return request.form.get("name", "").strip()[:120]


def _failed(response: Any) -> bool:
    """Only a refused password counts; a login's own successes never lock it out."""
    return response.status_code == 401


_per_account = limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"],
    key_func=lambda: f"account:{_login_name().casefold()}",
    methods=["POST"],
    deduct_when=_failed,
)
_per_address = limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_ADDRESS"],
    key_func=lambda: f"address:{get_remote_address()}",
    methods=["POST"],
    deduct_when=_failed,
)


def init_limits(app: Any) -> None:
    """Start the login limiter on `app` (storage from RATELIMIT_STORAGE_URI), refusing a limit it cannot read."""
    limiter.init_app(app)
    with app.app_context():
        for name, limit in (("LOGIN_LIMIT_ACCOUNT", _per_account), ("LOGIN_LIMIT_ADDRESS", _per_address)):
            try:
                if not list(limit):
                    raise ValueError("empty")
            except ValueError:
                raise ConfigError(f"{name} is {app.config[name]!r}; write a limit such as '5 per 15 minutes'") from None


@bp.errorhandler(429)
def _throttled(error: HTTPException) -> ResponseReturnValue:
    """The page of a login over its limit: when to try again, in words and in Retry-After."""
    if not isinstance(error, RateLimitExceeded):
        return error_page(error)
    now = time.time()
    resets = [lim.reset_at for lim in limiter.current_limits if lim.breached]
    seconds = max(1, math.ceil(max(resets, default=now + 60) - now))
    until = dt.datetime.fromtimestamp(now + seconds, dt.UTC)
    wait = f"{math.ceil(seconds / 60)} minutes" if seconds > 90 else f"{seconds} seconds"
    response = make_response(
        render_template("login.html", throttled=f"Try again in {wait}, after {until:%H:%M:%S} UTC."), 429
    )
    response.headers["Retry-After"] = str(seconds)
    return response


# --- login and logout --------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@_per_account
@_per_address
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        name, password = _login_name(), request.form.get("password", "")
        with _store().reading() as s:
            user = s.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None else None
        if password_matches(stored, password):  # as long for an unknown user as for a known one
            return sign_in(user, request.args.get("next", ""))
        error = "That name and password do not match a Plansheet user."
    return render_template("login.html", error=error), 401 if error else 200


def sign_in(user: User, target: str) -> ResponseReturnValue:
    """Begin a dashboard session of `user` (a checked password or a single sign-on) and go on to `target`."""
    sid = start_session(_store(), user.id, replacing=session.get("sid"))
    session.clear()  # a new session at login: nothing from before it carries over
    session["user_id"] = user.id
    session["sid"] = sid
    session["pw"] = _fingerprint(user)
    session["at"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(target if _local(target) else url_for("web.status"))  # never off this site


def start_session(store: Store, user_id: int, replacing: Any = None) -> str:
    """Record a new login of `user_id` and return its id (for the signed cookie); end the one it replaces."""
    sid = secrets.token_urlsafe(32)
    with store.transaction() as s:
        if isinstance(replacing, str):
            _end(s, replacing)
        s.add(WebSession(id=sid, user_id=user_id))
    return sid


def end_session(store: Store, sid: Any) -> None:
    """End the login `sid` on the server, so its cookie, wherever it was copied, no longer logs anyone in."""
    if isinstance(sid, str):
        with store.transaction() as s:
            _end(s, sid)


def _end(s: Any, sid: str) -> None:
    record = s.get(WebSession, sid)
    if record is not None and record.ended_at is None:
        record.ended_at = utcnow()


SESSION_HOURS = 12


def _local(target: str) -> bool:
    """True for a path of this site: no scheme or host, no backslash or control character a browser would drop."""
    if not target.startswith("/") or any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not target.startswith("//")


def _fingerprint(user: User) -> str:
    """Changes when the password does, so a new password ends every session of the old one."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    end_session(_store(), session.get("sid"))
    session.clear()
    return redirect(url_for("web.login"))


# --- pages -------------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def status() -> ResponseReturnValue:
    """Plan status: every team the user may see, with its newest submission's state."""
    user = g.web_user
    with _store().reading() as s:
        teams = [t for t in s.scalars(select(Team).order_by(Team.id)) if can_see(user, t.id)]
        rows = []
        for team in teams:
            newest = s.scalar(
                select(Submission).where(Submission.team_id == team.id).order_by(Submission.id.desc()).limit(1)
            )
            info = workflow.describe(s, newest) if newest is not None else None
            rows.append({"team": team, "submission": info, "state": info["status"] if info else "not started"})
    deadline = current_app.config.get("PLAN_DEADLINE")
    days_left = (dt.date.fromisoformat(deadline) - dt.date.today()).days if deadline else None
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return render_template("status.html", rows=rows, counts=counts, deadline=deadline, days_left=days_left)


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int) -> ResponseReturnValue:
    """One submission: its place in its approval chain, its report, and what it changes against the approved plan.

    Its teams' readers open it, and so does anyone holding a step of its chain (a region lead).
    """
    user = g.web_user
    with _store().reading() as s:
        found = s.get(Submission, submission_id)
        if found is None or not (can_see(user, found.team_id) or workflow._approves(s, user, found)):
            abort(404)
        info = workflow.describe(s, found)
        current = submissions.current_submission(s, found.team_id)
        diff = workflow.team_diff(s, current, found.id) if current != found.id else None
        decisions = list(s.scalars(select(Decision).where(Decision.submission_id == found.id)))
        deciders = {d.user_id: s.get(User, d.user_id).name for d in decisions}
        waiting = _waiting_step(info)
        may_decide = workflow.may_take(s, user, found, info)
    return render_template(
        "submission.html",
        s=info,
        chain=info["approval"],
        waiting=waiting,
        diff=diff,
        current=current,
        decisions=decisions,
        deciders=deciders,
        may_decide=may_decide,
    )


def _waiting_step(info: dict[str, Any]) -> dict[str, Any] | None:
    """The step of the chain a described submission waits for (position, label...), or None."""
    return next((step for step in info["approval"]["steps"] if step["status"] == "waiting"), None)


@bp.post("/submissions/<int:submission_id>/decide")
@login_required
def decide(submission_id: int) -> ResponseReturnValue:
    user = g.web_user
    verdict = {"approve": "approved", "reject": "rejected"}.get(request.form.get("action", ""))
    if verdict is None:
        abort(400, "approve or reject")
    with flashed_refusal():
        result = workflow.decide(
            _store(),
            _schema(),
            user,
            submission_id,
            verdict,
            request.form.get("comment", ""),
            over_allocation=current_app.config["OVER_ALLOCATION"],
            follow_ups=follow_ups(),
            step=request.form.get("step") or None,  # the step the form was shown for: 409 if another took it
        )
        next_step = _waiting_step(result)
        if verdict == "approved" and next_step is not None:
            flash(f"Submission {submission_id} approved at your step; it now waits for {next_step['label']}.", "ok")
        else:
            flash(f"Submission {submission_id} {verdict}.", "ok")
        for name, outcome in result.items() if isinstance(result, dict) else ():
            if name in follow_ups() and isinstance(outcome, dict) and "error" in outcome:
                flash(f"The decision stands, but {name.replace('_', ' ')} failed: {outcome['error']}", "error")
            elif name in follow_ups() and isinstance(outcome, dict) and "job" in outcome:
                flash(f"The {name.replace('_', ' ')} push is queued as job {outcome['job'][:8]}; see Jobs.", "ok")
    return redirect(url_for("web.submission", submission_id=submission_id))


@bp.get("/approvals")
@login_required
def approvals_page() -> ResponseReturnValue:
    """What waits for the user's approval (plans at a step they hold, transfers), and every plan in review."""
    queue = workflow.approval_queue(_store(), g.web_user)
    waiting = [(item, _waiting_step(item)) for item in queue["submissions"]]
    in_review = [(item, _waiting_step(item)) for item in queue["in_review"]]
    return render_template("approvals.html", waiting=waiting, transfers=queue["transfers"], in_review=in_review)


@bp.get("/master")
@login_required
def master() -> ResponseReturnValue:
    """The master budget by region x fiscal quarter against allocations, with a chart; filter by channel or BU."""
    user, schema = g.web_user, _schema()
    channel, unit = request.args.get("channel", ""), request.args.get("business_unit", "")
    view = master_model.load(_store(), schema, user)
    table = view.table
    if channel:
        table = table[table["channel"] == channel]
    if unit:
        table = table[table["business_unit"] == unit]
    long = rollup(table, schema, by=["region"], period="quarter") if len(table) else None
    regions = list(view.allocation_regions)
    grid = {r: dict.fromkeys(QUARTERS, 0) for r in regions}
    if long is not None:
        for row in long.itertuples():
            if row.region in grid:
                grid[row.region][row.period] = int(row.cents)
    rows = []
    for region in regions:
        allocation = {q: allocation_of(view.allocations, region, q, channel or None) for q in QUARTERS}
        planned = grid[region]
        rows.append({"region": region, "planned": planned, "allocation": allocation, "total": sum(planned.values())})
    total = sum(r["total"] for r in rows)
    chart = _chart(rows, schema.config.reporting_currency)
    teams = sorted(set(table["team_id"])) if len(table) else []
    return render_template(
        "master.html",
        rows=rows,
        total=total,
        chart=chart,
        version=view.version,
        channels=schema["channel"].choices,
        units=schema["business_unit"].choices,
        channel=channel,
        unit=unit,
        teams=teams,
        money=display_money,
        currency=schema.config.reporting_currency,
    )


def _chart(rows: list[dict[str, Any]], currency: str) -> Markup:
    """Planned spend against allocation by region."""
    return _bars(
        [r["region"] for r in rows],
        [
            ("Planned", "#1f6fb2", [r["total"] for r in rows]),
            ("Allocation", "#9aa9b9", [sum(v or 0 for v in r["allocation"].values()) for r in rows]),
        ],
        f"Planned vs allocation ({currency})",
    )


def _bars(labels: list[str], series: list[tuple[str, str, list[int]]], title: str) -> Markup:
    """A grouped bar chart of cents as an inline SVG (no script, no external file)."""
    width, height, top, bottom, left = 760, 300, 30, 40, 90
    peak = max([1, *(v for _, _, values in series for v in values)])
    band = (width - left - 20) / max(1, len(labels))
    bar = band / (len(series) + 1)
    plot = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{left}" y="18" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot}" x2="{width - 20}" y2="{top + plot}" stroke="#666"/>',
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot - plot * tick / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{value / 100:,.0f}</text>')
    for i, label in enumerate(labels):
        x0 = left + i * band + bar / 2
        for j, (name, colour, values) in enumerate(series):
            h = plot * max(values[i], 0) / peak
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" data-region="{escape(label)}" '
                f'data-value="{values[i] / 100:.2f}" x="{x0 + j * bar:.1f}" y="{top + plot - h:.1f}" '
                f'width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(name)} '
                f"{escape(label)}: {values[i] / 100:,.2f}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{height - bottom + 16}" font-size="12" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    for j, (name, colour, _) in enumerate(series):
        parts.append(f'<rect x="{left + j * 150}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + j * 150 + 14}" y="{height - 5}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@bp.get("/actuals")
@login_required
def actuals() -> ResponseReturnValue:
    """Plan vs actual: spend to date, pacing and year-end forecast by region (and channel), as charts."""
    user, schema = g.web_user, _schema()
    by = "channel" if request.args.get("by") == "channel" else "region"
    method = request.args.get("method", "run_rate")
    if method not in ("run_rate", "phasing"):
        abort(400, "method is run_rate or phasing")
    day = dt.date.today()
    view = master_model.load(_store(), schema, user)
    closed = closed_months(schema.calendar, day)
    frame = reports.reporting_measures(view, [by], closed, method)
    sums = frame.groupby(by, sort=True)[["planned", "planned_to_date", "actual", "forecast"]].sum()
    fraction = elapsed_fraction(schema.calendar, day)
    rows = []
    for key, row in sums.iterrows():
        pace = float(pacing(np.array([row["actual"]]), np.array([row["planned"]]), fraction)[0])
        rows.append(
            {
                "key": key,
                "planned": int(row["planned"]),
                "to_date": int(row["planned_to_date"]),
                "actual": int(row["actual"]),
                "forecast": int(row["forecast"]),
                "pacing": None if np.isnan(pace) else round(pace, 2),
            }
        )
    spend = _bars(
        [r["key"] for r in rows],
        [
            ("Planned to date", "#9aa9b9", [r["to_date"] for r in rows]),
            ("Actual", "#1f6fb2", [r["actual"] for r in rows]),
        ],
        f"Spend to date ({schema.config.reporting_currency})",
    )
    year = _bars(
        [r["key"] for r in rows],
        [
            ("Planned (year)", "#9aa9b9", [r["planned"] for r in rows]),
            ("Forecast", "#c77c1f", [r["forecast"] for r in rows]),
        ],
        f"Year-end forecast, {method.replace('_', ' ')} ({schema.config.reporting_currency})",
    )
    return render_template(
        "actuals.html",
        rows=rows,
        by=by,
        method=method,
        spend=spend,
        year=year,
        closed=closed,
        day=day,
        source="the finance system's import" if view.actuals_import else "the plans",
        money=display_money,
    )


@bp.get("/performance")
@login_required
def performance_page() -> ResponseReturnValue:
    """What the spend bought: spend against pipeline by channel, cost per lead against target by region, a table."""
    user, schema = g.web_user, _schema()
    period = request.args.get("period", "FY")
    view, per_line = performance.for_user(_store(), schema, user)
    with refused_as_http(400):
        span = performance.period_named(view, period)
    names = ("spend", "leads", "mqls", "opportunities", "won", "pipeline", "revenue", "cost_per_lead", "pipeline_roi")
    measures = [performance.BY_NAME[n] for n in names]
    tables = {}
    for by in ("region", "channel"):
        keys, codes = groups(view, [by])
        sums = performance.Sums.of(per_line, codes, len(keys))
        rows = []
        for g_, key in enumerate(keys):
            scope = performance.target_scope(view, [by], key)
            figures = {m.name: performance.figure(view, sums, g_, span, m, scope) for m in measures}
            rows.append({"key": key[0], "figures": figures})
        tables[by] = rows
    cur = schema.config.reporting_currency
    by_channel = tables["channel"]
    spend_chart = _bars(
        [r["key"] for r in by_channel],
        [
            ("Actual spend", "#1f6fb2", [r["figures"]["spend"].actual or 0 for r in by_channel]),
            ("Pipeline", "#2e8b57", [r["figures"]["pipeline"].actual or 0 for r in by_channel]),
        ],
        f"Spend against pipeline by channel, {span.label} ({cur})",
    )
    by_region = tables["region"]
    cpl_chart = _bars(
        [r["key"] for r in by_region],
        [
            ("Cost per lead", "#1f6fb2", [r["figures"]["cost_per_lead"].actual or 0 for r in by_region]),
            ("Target", "#9aa9b9", [r["figures"]["cost_per_lead"].target or 0 for r in by_region]),
        ],
        f"Cost per lead against target by region, {span.label} ({cur})",
    )
    return render_template(
        "performance.html",
        tables=tables,
        measures=measures,
        period=span.label,
        periods=["FY", *QUARTERS],
        spend_chart=spend_chart,
        cpl_chart=cpl_chart,
        shown=_shown_figure,
        currency=cur,
        results=view.outcomes_import is not None,
    )


def _shown_figure(figure: Any, which: str = "actual") -> str:
    """A figure as the page shows it: money to the cent, counts, ratios to two decimals; blank for no data."""
    value = getattr(figure, which)
    if value is None:
        return ""
    unit = figure.measure.unit
    if unit == performance.RATIO:
        return f"{float(value):,.2f}"
    if unit == performance.COUNT:
        units = performance.units(figure.measure, value)
        return f"{units:,.0f}" if float(units).is_integer() else f"{units:,.2f}"
    return display_money(int(value))


@bp.get("/teams/<team>")
@login_required
def team(team: str) -> ResponseReturnValue:
    """A team's approved lines (the drill-down from the master)."""
    user = g.web_user
    if not can_see(user, team):
        abort(404)
    with _store().reading() as s:
        if s.get(Team, team) is None:
            abort(404)
    view = master_model.load(_store(), _schema(), user)
    keep = (view.table["team_id"] == team).to_numpy() if len(view.table) else np.zeros(0, dtype=bool)
    lines = [line for line, k in zip(view.lines, keep, strict=True) if k]
    planned = view.months[keep].sum(axis=1).tolist()  # reporting cents, the one grain
    actual = view.actual[keep].tolist()
    return render_template(
        "team.html",
        team=team,
        rows=list(zip(lines, planned, actual, strict=True)),
        current=view.held_by(team),
        money=display_money,
        currency=_schema().config.reporting_currency,
    )


@bp.get("/transfers")
@login_required
def transfers_page() -> ResponseReturnValue:
    """Budget transfers: ask for one, and each the caller may read, with the approvals still open."""
    user = g.web_user
    if user.role == Role.ADMIN:
        abort(403, "admins manage users and tokens; finance and marketers move budgets")
    with _store().reading() as session:
        me = session.merge(user)
        items = transfers.transfers_json(session, me)
        mine = {t.region for t in me.teams}
    schema = _schema()
    regions = list(schema.config.regions) if user.role == Role.FINANCE else sorted(mine)
    return render_template(
        "transfers.html",
        transfers=items,
        regions=regions,
        all_regions=list(schema.config.regions),
        channels=list(schema["channel"].choices),
        currency=schema.config.reporting_currency,
    )


@bp.post("/transfers")
@login_required
def ask_transfer() -> ResponseReturnValue:
    form = request.form
    body = {
        "from": {
            "region": form.get("from_region"),
            "quarter": form.get("from_quarter"),
            "channel": form.get("from_channel") or "*",
        },
        "to": {
            "region": form.get("to_region"),
            "quarter": form.get("to_quarter"),
            "channel": form.get("to_channel") or "*",
        },
        "amount": form.get("amount", ""),
        "reason": form.get("reason", ""),
    }
    limit = transfers.finance_limit(current_app.config)
    with flashed_refusal(with_issues=True):
        answer = transfers.request_transfer(
            _store(), _schema(), g.web_user, body, limit, current_app.config["OVER_ALLOCATION"]
        )
        state = (
            "made"
            if answer["status"] == "approved"
            else f"asked for; it waits for {' and '.join(answer['waiting_for'])}"
        )
        flash(f"Transfer {answer['id']} {state}.", "ok")
        for message in answer["over_allocation"]:
            flash(f"Flagged: {message}", "error")
    return redirect(url_for("web.transfers_page"))


@bp.post("/transfers/<int:transfer_id>/decide")
@login_required
def decide_transfer(transfer_id: int) -> ResponseReturnValue:
    verdict = {"approve": "approved", "reject": "rejected"}.get(request.form.get("action", ""))
    if verdict is None:
        abort(400, "approve or reject")
    with flashed_refusal():
        answer = transfers.decide_transfer(
            _store(),
            _schema(),
            g.web_user,
            transfer_id,
            verdict,
            request.form.get("comment", ""),
            current_app.config["OVER_ALLOCATION"],
        )
        flash(
            f"Transfer {transfer_id} {verdict if answer['status'] != 'requested' else 'approved at your step'}.", "ok"
        )
        for message in answer["over_allocation"]:
            flash(f"Flagged: {message}", "error")
    return redirect(url_for("web.transfers_page"))


@bp.get("/budget")
@login_required
def budget_page() -> ResponseReturnValue:
    """The budget cycle: the reforecast cycle and each team's reforecast; budget against plan, estimate and actual."""
    user = g.web_user
    if user.role == Role.ADMIN:
        abort(403, "admins manage users and tokens; finance and marketers plan budgets")
    schema = _schema()
    every = cycles.cycles_json(_store(), schema, user)
    current = next((c for c in every if c["status"] == "open"), None)
    by = request.args.get("by", "region")
    period = request.args.get("period", "quarter")
    try:
        view = baselines.budget_json(_store(), schema, user, None, by, period)
    except NotFound:
        view = None  # no baseline locked yet: the page says so
    except ServiceError as exc:
        abort(400, exc.detail)
    months = [{"name": c.name, "label": c.label} for c in schema.month_columns[:-1]]
    return render_template(
        "budget.html",
        cycle=current,
        cycles=every,
        view=view,
        by=by,
        period=period,
        months=months,
        currency=schema.config.reporting_currency,
    )


@bp.post("/cycles")
@login_required
def open_cycle() -> ResponseReturnValue:
    form = request.form
    try:
        deadline = dt.date.fromisoformat(form.get("deadline", ""))
    except ValueError:
        flash("Give the deadline as a date (YYYY-MM-DD).", "error")
        return redirect(url_for("web.budget_page"))
    with flashed_refusal():
        answer = cycles.open_cycle(
            _store(), _schema(), g.web_user, form.get("name", ""), form.get("through", ""), deadline,
            form.get("comment", ""),
        )  # fmt: skip
        flash(f"{answer['name']} is open: the months through {answer['closed_through']} are closed.", "ok")
    return redirect(url_for("web.budget_page"))


@bp.post("/cycles/<int:cycle_id>/close")
@login_required
def close_cycle(cycle_id: int) -> ResponseReturnValue:
    with flashed_refusal():
        answer = cycles.close_cycle(_store(), _schema(), g.web_user, cycle_id)
        flash(f"{answer['name']} is closed.", "ok")
    return redirect(url_for("web.budget_page"))


@bp.get("/spend")
@login_required
def spend_page() -> ResponseReturnValue:
    """Spend control: plan, committed, invoiced, accrued and remaining, the POs to look at, and the month's accrual."""
    user, schema = g.web_user, _schema()
    by = request.args.get("by", "team")
    view = master_model.load(_store(), schema, user)
    with refused_as_http():
        spend = spend_report.spend_json(view, by, request.args.get("month") or None)
        accrual = accruals.report(_store(), view, spend["month"])
    months = [
        {"name": c.name, "label": m.label} for c, m in zip(schema.month_columns, schema.calendar.months, strict=True)
    ]
    return render_template(
        "spend.html",
        spend=spend,
        rows=list(zip(spend["rows"], spend["cents"]["rows"].values(), strict=True)),  # the same order
        accrual=accrual,
        by=by,
        month=spend["month"],
        months=months,
        measures=spend_report.MEASURES,
        money=display_money,
        currency=schema.config.reporting_currency,
    )


@bp.post("/spend/close")
@login_required
def close_accrual() -> ResponseReturnValue:
    user = g.web_user
    if user.role != Role.FINANCE:
        abort(403, "only finance closes the month-end accrual")
    month = request.form.get("month", "").strip().lower()
    with flashed_refusal():
        answer = accruals.close(_store(), _schema(), user, month)
        flash(f"The accrual of {answer['label']} is closed: {len(answer['entries'])} entries, {answer['total']}.", "ok")
    known = month in {c.name for c in _schema().month_columns}  # an unknown month's refusal shows on the default page
    return redirect(url_for("web.spend_page", month=month if known else None))


@bp.get("/spend/journal.csv")
@login_required
def spend_journal() -> ResponseReturnValue:
    """The month's accrual journal for the general ledger, for a finance user signed in to the dashboard."""
    user, schema = g.web_user, _schema()
    if user.role != Role.FINANCE:
        abort(403, "only finance exports the accrual journal")
    month = request.args.get("month", "").strip().lower()
    with refused_as_http():
        text = accruals.journal_csv(_store(), master_model.load(_store(), schema, user), month)
    name = f"accrual-{schema.calendar.label}-{month}.csv"
    return send_file(io.BytesIO(text.encode()), mimetype="text/csv", as_attachment=True, download_name=name)


@bp.get("/jobs")
@login_required
def job_list() -> ResponseReturnValue:
    """Background jobs (pushes, workbook builds): finance sees every one, others their own."""
    return render_template("jobs.html", jobs=jobs.listing(_store(), g.web_user, 100))


@bp.get("/versions")
@login_required
def versions() -> ResponseReturnValue:
    user = g.web_user
    listing = workflow.master_versions(_store(), user)
    events = workflow.audit(_store(), user, 100) if user.role == Role.FINANCE else []
    return render_template("versions.html", versions=listing, events=events)


@bp.get("/versions/<int:version>")
@login_required
def version_diff(version: int) -> ResponseReturnValue:
    """What master version `version` changed against the one before it, line by line."""
    if version < 1:
        abort(404)
    try:
        diff = workflow.master_diff(_store(), g.web_user, version - 1, version)
    except ServiceError:
        abort(404)
    return render_template("version.html", version=version, diff=diff)


@bp.get("/download/master.xlsx")
@login_required
def download_master() -> ResponseReturnValue:
    _, data = master_workbook_bytes(_store(), _schema(), g.web_user, dt.date.today())
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="master.xlsx")


@bp.get("/download/template/<team>.xlsx")
@login_required
def download_template(team: str) -> ResponseReturnValue:
    if not can_see(g.web_user, team):
        abort(404)
    with tempfile.TemporaryDirectory() as folder:
        with refused_as_http():
            path = workflow.team_template(_store(), _schema(), g.web_user, team, Path(folder) / f"plan-{team}.xlsx")
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=f"plan-{team}.xlsx")


@bp.route("/addin-token", methods=["GET", "POST"])
@login_required
def addin_token() -> ResponseReturnValue:
    """A read-only, expiring API token for the add-ins, made for the signed-in user and shown once.

    So a person who signs in with single sign-on, and has no token from an admin, can still use
    the live functions in Excel or Google Sheets, with a token that can do nothing else.
    """
    token = expires_at = None
    days = current_app.config["ADDIN_TOKEN_DAYS"]
    if request.method == "POST":
        with _store().transaction() as s:
            user = s.get(User, g.web_user.id)
            token, expires_at = create_addin_token(s, user, dt.timedelta(days=float(days)))
    response = make_response(render_template("addin_token.html", token=token, expires_at=expires_at, days=days))
    response.headers["Cache-Control"] = "no-store"  # the token is on this page only once
    return response
