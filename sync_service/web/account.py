"""A person's own pages: their background jobs, and the add-ins' token with the steps to set each add-in up."""

from __future__ import annotations

import datetime as dt

from flask import (
    current_app,
    g,
    make_response,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue

from sync_service.access.auth import create_addin_token
from sync_service.platform import jobs
from sync_service.platform.context import store as app_store
from sync_service.platform.storage import User
from sync_service.web.base import bp, login_required


@bp.get("/jobs")
@login_required
def job_list() -> ResponseReturnValue:
    """Background jobs (pushes, workbook builds): finance sees every one, others their own."""
    return render_template("jobs.html", jobs=jobs.listing(app_store(), g.web_user, 100)[0])


@bp.route("/addin-token", methods=["GET", "POST"])
@login_required
def addin_token() -> ResponseReturnValue:
    """A read-only, expiring API token for the add-ins, made for the signed-in user and shown once; and their setup.

    So a person who signs in with single sign-on, and has no token from an admin, can still use
    the live functions in Excel or Google Sheets, with a token that can do nothing else. The page
    gives the manifest's link and the steps for each host, with this service's own address.
    """
    token = expires_at = None
    days = current_app.config["ADDIN_TOKEN_DAYS"]
    if request.method == "POST":
        with app_store().transaction() as s:
            user = s.get(User, g.web_user.id)
            token, expires_at = create_addin_token(s, user, dt.timedelta(days=float(days)))
    address = service_address()
    page = render_template(
        "addin_token.html",
        token=token,
        expires_at=expires_at,
        days=days,
        address=address,
        secure=address.startswith("https://"),
    )
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"  # the token is on this page only once
    return response


def service_address() -> str:
    """The address people reach this service at, as the add-in manifest writes it (PUBLIC_URL, else the one asked)."""
    return str(current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
