"""The Management packs page: each month's pack to download, finance's build button, and the email subscription."""

from __future__ import annotations

import io

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from sync_service.documents import packs
from sync_service.notifications import subscriptions
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import ServiceError
from sync_service.platform.storage import Role
from sync_service.web.base import bp, formats, login_required
from sync_service.web.refusals import flashed_refusal, refused_as_http


@bp.get("/packs")
@login_required
def packs_page() -> ResponseReturnValue:
    """The packs of the year the user may see, newest first, with what is being built and who receives them."""
    user, schema, store = g.web_user, app_schema(), app_store()
    with refused_as_http():
        found = packs.listing(store, schema, user)
    with store.reading() as session:
        mine = subscriptions.state(session, user)
        receivers = [u.name for u in subscriptions.subscribers(session)] if user.role == Role.FINANCE else []
    try:
        chosen = packs.default_month(store, schema)
    except ServiceError:  # no month closed yet: the form offers every month, the first chosen
        chosen = schema.month_columns[0].name
    return render_template(
        "packs.html",
        packs=found,
        pending=packs.pending(store, user) if user.role == Role.FINANCE else [],
        subscription=mine,
        subscribers=receivers,
        months=[c.name for c in schema.month_columns],
        chosen=chosen,
    )


@bp.post("/packs")
@login_required
def build_pack() -> ResponseReturnValue:
    """Finance builds a month's pack (the same call as POST /api/v1/packs); the page shows it being built."""
    if g.web_user.role != Role.FINANCE:
        abort(403, "only finance builds the management pack")
    month = request.form.get("month", "").strip().lower() or None
    email = request.form.get("email") == "yes"
    with flashed_refusal():
        packs.request_pack(current_app, app_schema(), g.web_user, month, email)
        label = formats().month(month or packs.default_month(app_store(), app_schema()), app_schema().calendar)
        sent = " and sent to its subscribers" if email else ""
        flash(f"The management pack of {label} is being built{sent}; it is listed here once it is ready.", "ok")
    return redirect(url_for("web.packs_page"))


@bp.post("/packs/subscription")
@login_required
def pack_subscription() -> ResponseReturnValue:
    """Start or stop the user's monthly pack by email (PUT /api/v1/me/pack-subscription)."""
    on = request.form.get("subscribed") == "yes"
    with flashed_refusal():
        answer = subscriptions.subscribe(app_store(), current_app.config, g.web_user, on)
        if answer["subscribed"]:
            flash(f"Each month's management pack will be emailed to {answer['address']}.", "ok")
        else:
            flash("The management pack will no longer be emailed to you.", "ok")
    return redirect(url_for("web.packs_page"))


@bp.get("/packs/<int:pack_id>/<any(workbook, pdf):kind>")
@login_required
def download_pack(pack_id: int, kind: str) -> ResponseReturnValue:
    """A pack's workbook or PDF, for a user who may see it (404 otherwise, and for a pack without a PDF)."""
    with refused_as_http():
        name, media_type, data = packs.file_of(app_store(), g.web_user, pack_id, "xlsx" if kind == "workbook" else kind)
    return send_file(io.BytesIO(data), mimetype=media_type, as_attachment=True, download_name=name)
