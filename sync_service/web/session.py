"""Signing in and out: password logins (throttled), sessions kept server-side, CSRF on every form."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from sheet_templates.errors import ConfigError
from sync_service.access.passwords import password_matches
from sync_service.platform.context import store as app_store
from sync_service.platform.storage import Store, User, WebSession, utcnow
from sync_service.web.base import bp, error_page
from sync_service.web.forms import FormErrors


@bp.before_app_request
def _load_user() -> None:
    g.web_user = None
    user_id = session.get("user_id")
    if user_id is not None:
        with app_store().reading() as s:
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
    page = render_template(
        "login.html", throttled=f"Try again in {wait}, after {until:%H:%M:%S} UTC.", name=_login_name()
    )
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
@_per_account
@_per_address
def login() -> ResponseReturnValue:
    """The login form; a refused try shows it again with the name kept and the error summarised at the top."""
    errors = FormErrors()
    name = ""
    if request.method == "POST":
        name, password = _login_name(), request.form.get("password", "")
        if not name:
            errors.add("name", "Enter your Plansheet name")
        if not password:
            errors.add("password", "Enter your password")
        if errors:  # nothing was checked, so nothing counts against the limits
            return render_template("login.html", errors=errors, name=name), 422
        with app_store().reading() as s:
            user = s.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None else None
        if password_matches(stored, password):  # as long for an unknown user as for a known one
            return sign_in(user, request.args.get("next", ""))
        errors.add("password", "That name and password do not match a Plansheet user: check both and try again")
        return render_template("login.html", errors=errors, name=name), 401
    return render_template("login.html", errors=errors, name=name)


def sign_in(user: User, target: str) -> ResponseReturnValue:
    """Begin a dashboard session of `user` (a checked password or a single sign-on) and go on to `target`."""
    sid = start_session(app_store(), user.id, replacing=session.get("sid"))
    session.clear()  # a new session at login: nothing from before it carries over
    session["user_id"] = user.id
    session["sid"] = sid
    session["pw"] = _fingerprint(user)
    session["at"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(target if is_local(target) else url_for("web.status"))  # never off this site


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


def is_local(target: str) -> bool:
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
    end_session(app_store(), session.get("sid"))
    session.clear()
    return redirect(url_for("web.login"))
