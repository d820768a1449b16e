"""The budget pages: budget against the latest estimate, reforecast cycles, and budget transfers."""

from __future__ import annotations

import datetime as dt

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from sync_service.budget import baselines, transfers
from sync_service.planning import cycles
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import NotFound, ServiceError
from sync_service.platform.storage import Role
from sync_service.web.base import bp, login_required
from sync_service.web.refusals import flashed_refusal


@bp.get("/transfers")
@login_required
def transfers_page() -> ResponseReturnValue:
    """Budget transfers: ask for one, and each the caller may read, with the approvals still open."""
    user = g.web_user
    if user.role == Role.ADMIN:
        abort(403, "admins manage users and tokens; finance and marketers move budgets")
    with app_store().reading() as session:
        me = session.merge(user)
        items = transfers.transfers_json(session, me, app_schema().calendar.year)
        mine = {t.region for t in me.teams}
    schema = app_schema()
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
            app_store(), app_schema(), g.web_user, body, limit, current_app.config["OVER_ALLOCATION"]
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
            app_store(),
            app_schema(),
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
    schema = app_schema()
    every = cycles.cycles_json(app_store(), schema, user)
    current = next((c for c in every if c["status"] == "open"), None)
    by = request.args.get("by", "region")
    period = request.args.get("period", "quarter")
    try:
        view = baselines.budget_json(app_store(), schema, user, None, by, period)
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
            app_store(), app_schema(), g.web_user, form.get("name", ""), form.get("through", ""), deadline,
            form.get("comment", ""),
        )  # fmt: skip
        flash(f"{answer['name']} is open: the months through {answer['closed_through']} are closed.", "ok")
    return redirect(url_for("web.budget_page"))


@bp.post("/cycles/<int:cycle_id>/close")
@login_required
def close_cycle(cycle_id: int) -> ResponseReturnValue:
    with flashed_refusal():
        answer = cycles.close_cycle(app_store(), app_schema(), g.web_user, cycle_id)
        flash(f"{answer['name']} is closed.", "ok")
    return redirect(url_for("web.budget_page"))
