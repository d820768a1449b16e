"""The spend-control pages: spend by line, team or region, the month-end close and its journal."""

from __future__ import annotations

import io
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue

from sheet_templates.money import to_cents
from sync_service.documents import packs
from sync_service.master import model as master_model
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.storage import Role
from sync_service.spend import accruals
from sync_service.spend import report as spend_report
from sync_service.web.base import bp, formats, login_required
from sync_service.web.charts import Row, bar_chart, cents
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
    # The chart groups by team or region; the by-line view (a row per line) is charted by region.
    charted = spend if by != "line" else spend_report.spend_json(view, "region", spend["month"])
    return render_template(
        "spend.html",
        spend=spend,
        rows=list(zip(spend["rows"], spend["cents"]["rows"].values(), strict=True)),  # the same order
        accrual=accrual,
        entries=[_with_cents(e, "po_amount", "accrued") for e in accrual["entries"]],
        over_plan=[_with_cents(o, "planned", "purchase_orders", "over_by") for o in spend["over_plan"]],
        over_po=[_with_cents(p, "amount", "invoiced", "over_by") for p in spend["over_po"]],
        unmatched_pos=[_with_cents(p, "amount", "invoiced", "over_by") for p in spend["unmatched_purchase_orders"]],
        unmatched_invoices=[_with_cents(i, "amount") for i in spend["unmatched_invoices"]],
        chart=_chart(charted, accrual["label"]),
        by=by,
        month=spend["month"],
        months=months,
        measures=spend_report.MEASURES,
        currency=schema.config.reporting_currency,
    )


def _with_cents(item: dict[str, Any], *fields: str) -> dict[str, Any]:
    """`item` with each money text field (in its own currency, exact) also as cents, for formatting and sorting."""
    return {**item, **{f"{f}_cents": to_cents(item[f]) if item.get(f) not in (None, "") else None for f in fields}}


def _chart(spend: dict[str, Any], month: str) -> Any:
    """Invoiced and committed against the plan, by team or region: one measure (reporting money) on one axis."""
    by, cur = spend["by"], spend["currency"]
    rows = [
        Row(key.split("\x1f")[0], (cents(c["invoiced"]), cents(c["committed"])), cents(c["plan"]))
        for key, c in spend["cents"]["rows"].items()
    ]
    return bar_chart(
        chart_id="spend-chart",
        title=f"Invoiced and committed against the plan, by {by}, at the end of {month} ({cur})",
        axis=f"Spend for the year ({cur})",
        series=[("Invoiced", "#1f3b63"), ("Committed (open PO)", "#7fa7d1")],
        rows=rows,
        label=formats().compact,
        target="Planned",
        flag="Over plan",
        key_name=by,
    )


@bp.post("/spend/close")
@login_required
def close_accrual() -> ResponseReturnValue:
    user = g.web_user
    if user.role != Role.FINANCE:
        abort(403, "only finance closes the month-end accrual")
    month = request.form.get("month", "").strip().lower()
    with flashed_refusal():
        answer = accruals.close(app_store(), app_schema(), user, month, packs.after_close(current_app))
        total = formats().money(answer["cents"]["total"], answer["currency"])
        entries = formats().count(len(answer["entries"]))
        pack = " Its management pack is being built (Management packs)." if answer["pack"] else ""
        flash(f"The accrual of {answer['label']} is closed: {entries} entries, {total}.{pack}", "ok")
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
