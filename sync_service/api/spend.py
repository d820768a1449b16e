"""The spend-control routes: POs and invoices imported, the spend view, month-end accruals and the journal."""

from __future__ import annotations

import io

from flask import current_app, jsonify, send_file
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import (
    XLSX,
    bp,
    export_import,
    finance_gate,
    master_for,
    over_allocation_policy,
    planner_gate,
)
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.documents import packs
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.spend import accruals
from sync_service.spend import orders as spend
from sync_service.spend import report as spend_report


@operation(
    bp,
    "POST",
    "/api/v1/purchase-orders",
    "Import purchase orders from the procurement or ERP system (CSV or xlsx): new and changed POs are stored",
    response=c.SpendImportAnswer,
    status=201,
    errors=(403, 422),
    query=c.ExportQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=finance_gate("imports purchase orders"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_purchase_orders(query: c.ExportQuery) -> ResponseReturnValue:
    """201 with the report when some PO was new or changed, 200 when the export held nothing new.

    With `Prefer: respond-async` the export is imported by a background job (202), as actuals are.
    """
    return export_import(
        "purchase_orders.import",
        query,
        lambda user, raw, filename, idem, how: spend.import_purchase_orders(
            app_store(),
            app_schema(),
            user,
            raw,
            filename,
            over_allocation_policy(),
            idem,
            date_order=query.date_order,
            window_days=spend.window_days(current_app.config),
            how=how,
        ),
    )


@operation(
    bp,
    "POST",
    "/api/v1/invoices",
    "Import vendor invoices against purchase orders (CSV or xlsx), matched by PO number",
    response=c.SpendImportAnswer,
    status=201,
    errors=(403, 422),
    query=c.ExportQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=finance_gate("imports invoices"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_invoices(query: c.ExportQuery) -> ResponseReturnValue:
    """201 with the report when some invoice was new or changed, 200 when the export held nothing new.

    With `Prefer: respond-async` the export is imported by a background job (202), as actuals are.
    """
    return export_import(
        "invoices.import",
        query,
        lambda user, raw, filename, idem, how: spend.import_invoices(
            app_store(),
            app_schema(),
            user,
            raw,
            filename,
            idem,
            date_order=query.date_order,
            window_days=spend.window_days(current_app.config),
            how=how,
        ),
    )


@operation(
    bp,
    "GET",
    "/api/v1/purchase-orders",
    "The purchase orders in force the caller may see, each with its line, invoices, open balance and accruals",
    response=c.PurchaseOrders,
    errors=(403,),
    query=c.PurchaseOrdersQuery,
    gate=planner_gate,
)
def list_purchase_orders(query: c.PurchaseOrdersQuery) -> ResponseReturnValue:
    view = master_for(current_user())
    return jsonify(spend_report.purchase_orders_json(view, query.status, query.limit, query.after))


@operation(
    bp,
    "GET",
    "/api/v1/spend",
    "Plan, committed (open PO), invoiced, accrued and remaining by line, team or region",
    response=c.SpendAnswer,
    errors=(403, 404),
    query=c.SpendQuery,
    gate=planner_gate,
)
def spend_view(query: c.SpendQuery) -> ResponseReturnValue:
    return jsonify(spend_report.spend_json(master_for(current_user()), query.by, query.month))


@operation(
    bp,
    "GET",
    "/api/v1/accruals",
    "Which months' accruals are closed, and the month being closed",
    response=c.AccrualMonths,
    errors=(403,),
    gate=planner_gate,
)
def accrual_months() -> ResponseReturnValue:
    view = master_for(current_user())
    return jsonify(
        {"month": accruals.default_month(view), "closed": accruals.closes_json(app_store(), app_schema().calendar.year)}
    )


@operation(
    bp,
    "GET",
    "/api/v1/accruals/<month>",
    "A fiscal month's accrual: each PO's, and totals by team and region (a closed month's as it was closed)",
    response=c.AccrualAnswer,
    errors=(403, 404),
    gate=planner_gate,
)
def accrual_report(month: str) -> ResponseReturnValue:
    return jsonify(accruals.report(app_store(), master_for(current_user()), month))


@operation(
    bp,
    "GET",
    "/api/v1/accruals/<month>/journal.csv",
    "The month's accrual as a journal for the general ledger (CSV), with its reversal on the next month's first day",
    response=None,
    errors=(403, 404, 409),
    query=c.JournalQuery,
    produces="text/csv",
    gate=finance_gate("exports the accrual journal"),
)
def accrual_journal(month: str, query: c.JournalQuery) -> ResponseReturnValue:
    text = accruals.journal_csv(app_store(), master_for(current_user()), month, query.entries)
    name = f"accrual-{app_schema().calendar.label}-{month.strip().lower()}.csv"
    return send_file(io.BytesIO(text.encode()), mimetype="text/csv", as_attachment=True, download_name=name)


@operation(
    bp,
    "POST",
    "/api/v1/accruals/<month>/close",
    "Close a month's accrual: its entries are kept as they are now and never change (months close in order); "
    "the month's management pack is built",
    response=c.AccrualAnswer,
    errors=(403, 404, 409),
    gate=finance_gate("closes the month-end accrual"),
)
def close_accrual(month: str) -> ResponseReturnValue:
    return jsonify(accruals.close(app_store(), app_schema(), current_user(), month, packs.after_close(current_app)))
