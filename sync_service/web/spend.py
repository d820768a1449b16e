"""The spend-control pages: spend by line, team or region, the month-end close and its journal."""

from __future__ import annotations

import io

from flask import (
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue

from sheet_templates.money import display_money
from sync_service.master import model as master_model
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.storage import Role
from sync_service.spend import accruals
from sync_service.spend import report as spend_report
from sync_service.web.base import bp, login_required
from sync_service.web.refusals import flashed_refusal, refused_as_http


@bp.get("/spend")
@login_required
def spend_page() -> ResponseReturnValue:
    """Spend control: plan, committed, invoiced, accrued and remaining, the POs to look at, and the month's accrual."""
    user, schema = g.web_user, app_schema()
    by = request.args.get("by", "team")
    view = master_model.load(app_store(), schema, user)
    with refused_as_http():
        spend = spend_report.spend_json(view, by, request.args.get("month") or None)
        accrual = accruals.report(app_store(), view, spend["month"])
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
        answer = accruals.close(app_store(), app_schema(), user, month)
        flash(f"The accrual of {answer['label']} is closed: {len(answer['entries'])} entries, {answer['total']}.", "ok")
    known = month in {
        c.name for c in app_schema().month_columns
    }  # an unknown month's refusal shows on the default page
    return redirect(url_for("web.spend_page", month=month if known else None))


@bp.get("/spend/journal.csv")
@login_required
def spend_journal() -> ResponseReturnValue:
    """The month's accrual journal for the general ledger, for a finance user signed in to the dashboard."""
    user, schema = g.web_user, app_schema()
    if user.role != Role.FINANCE:
        abort(403, "only finance exports the accrual journal")
    month = request.args.get("month", "").strip().lower()
    with refused_as_http():
        text = accruals.journal_csv(app_store(), master_model.load(app_store(), schema, user), month)
    name = f"accrual-{schema.calendar.label}-{month}.csv"
    return send_file(io.BytesIO(text.encode()), mimetype="text/csv", as_attachment=True, download_name=name)
