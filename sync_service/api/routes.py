"""API v1 (JSON): each view declares its contract, calls the domain, and serialises its answer.

The `@operation` declarations (`sync_service.contracts`) authenticate, check the caller's role
where no input is needed for it, validate the path, query and body against the request models,
and generate the OpenAPI document; a view receives validated models only.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import mimetypes
import posixpath
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from sheet_templates.schema import PlanSchema
from sync_service.access import auth
from sync_service.access.approvals import may_approve_something
from sync_service.api import contracts as c
from sync_service.api import openapi
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.api.uploads import uploaded
from sync_service.budget import allocations as allocation_rules
from sync_service.budget import baselines, transfers
from sync_service.documents.master_workbook import master_workbook_bytes
from sync_service.integrations.google import sync as sheets_sync
from sync_service.master import functions as functions_api
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.notifications import notices as notifications
from sync_service.planning import cycles, scenarios, workflow
from sync_service.planning import periods as period_locks
from sync_service.platform import jobs, readiness
from sync_service.platform.context import SCHEMA, STORE
from sync_service.platform.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    TooLarge,
    Unprocessable,
)
from sync_service.platform.idempotency import Idempotency, replay
from sync_service.platform.storage import Role, Store, Team, TokenScope, User
from sync_service.results import actuals, outcomes
from sync_service.spend import accruals
from sync_service.spend import orders as spend
from sync_service.spend import report as spend_report

EXPORT_EMPTY = "the export is empty; upload a CSV or xlsx file"
bp = Blueprint("api", __name__)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _store() -> Store:
    return current_app.extensions[STORE]


def _schema() -> PlanSchema:
    return current_app.extensions[SCHEMA]


def follow_ups() -> dict[str, Any]:
    """What runs after every decision, from the configuration as it is now (the dashboard asks here too)."""
    return sheets_sync.follow_ups_for(current_app)


def _master(user: User) -> master_model.Master:
    """The master read model as `user` may see it."""
    return master_model.load(_store(), _schema(), user)


# What a read-only add-in token may call: the spreadsheet functions and the reads of the master.
ADDIN_SCOPES = (TokenScope.FULL.value, TokenScope.FUNCTIONS.value)


@bp.before_app_request
def _refuse_oversized_bodies() -> None:
    """Refuse a body over the limit from its Content-Length, before any of it is read or spooled to disk."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request is {request.content_length:,} bytes; this service accepts up to {limit:,}")


def _finance(what: str) -> Any:
    """A gate: 403 unless the caller is finance (decided before any input is read)."""
    return lambda: auth.require_finance(current_user(), what)


def _planner() -> None:
    """A gate: finance and marketers, who plan and move budget; admins manage users, not money."""
    if current_user().role == Role.ADMIN:
        raise Forbidden("admins manage users and tokens; finance and marketers read and move budgets")


def _approver() -> None:
    """A gate: finance, and the users an approval chain names (a region lead, a controller)."""
    if not may_approve_something(current_user()):
        raise Forbidden("only finance and the approvers an approval chain names approve or reject plans")


def _admin() -> None:
    if current_user().role != Role.ADMIN:
        raise Forbidden("only admins manage users and tokens")


@operation(bp, "GET", "/api/v1/openapi.json", "This description (OpenAPI 3.1)", response=None, auth=False)
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())


@operation(bp, "GET", "/health", "Liveness: the service and its database answer", response=c.Health, auth=False)
def health() -> ResponseReturnValue:
    with _store().reading() as session:
        session.execute(text("SELECT 1"))
    return jsonify({"status": "ok", "database": "ok"})


@operation(
    bp,
    "GET",
    "/ready",
    "Readiness: this process can serve (database at the newest schema; Redis answers when configured); 503 if not",
    response=c.Ready,
    auth=False,
)
def ready() -> ResponseReturnValue:
    return jsonify(readiness.check(current_app, _store()))


def _idempotent(
    user: User, fingerprint: tuple[bytes | str, ...], run: Callable[[Idempotency | None], Any], status: int = 200
) -> ResponseReturnValue:
    """Run `run` once per Idempotency-Key: a retry gets the stored first answer, marked as replayed.

    `run` answers a body (sent with `status`) or (status, body).
    """

    def answered(result: Any) -> ResponseReturnValue:
        if isinstance(result, tuple):
            return jsonify(result[1]), result[0]
        return jsonify(result), status

    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        try:
            return answered(run(None))
        except IntegrityError:  # a concurrent request changed the same thing first
            raise Conflict("another request changed this at the same moment; reload and try again") from None
    idem = Idempotency.of(key, request.method, request.path, *fingerprint)
    for _ in range(2):
        replayed = replay(_store(), user, idem)
        if replayed is not None:
            response = jsonify(replayed[1])
            response.status_code = replayed[0]
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            return answered(run(idem))
        except IntegrityError:  # a concurrent request with the same key won the race: replay its answer
            continue
        except ServiceError:  # e.g. "already approved" by this very request's first try, committed meanwhile
            replayed = replay(_store(), user, idem)
            if replayed is None:
                raise
            continue
    raise ServiceError("the request could not be completed; retry it with the same Idempotency-Key")


@operation(
    bp,
    "POST",
    "/api/v1/submissions",
    "Submit a team's plan: an xlsx upload (multipart) or JSON lines or rows",
    response=c.Submission,
    status=201,
    errors=(403, 404, 409, 422),
    body=c.SubmissionJson,
    form=c.SubmissionForm,
    idempotent_key=True,
)
def create_submission(body: c.SubmissionJson | None, form: c.SubmissionForm | None) -> ResponseReturnValue:
    user = current_user()
    incoming = _incoming(body, form)
    fingerprint = (incoming.team, incoming.source, incoming.raw)
    return _idempotent(
        user,
        fingerprint,
        lambda idem: workflow.submit(_store(), _schema(), user, incoming, idem, over_allocation=_policy()),
        201,
    )


def _policy() -> str:
    return current_app.config["OVER_ALLOCATION"]


@operation(
    bp,
    "GET",
    "/api/v1/submissions",
    "Submissions the caller may see",
    response=c.Submissions,
    errors=(403,),
    query=c.SubmissionsQuery,
)
def list_submissions(query: c.SubmissionsQuery) -> ResponseReturnValue:
    return jsonify({"submissions": workflow.list_submissions(_store(), current_user(), query.team)})


@operation(
    bp,
    "GET",
    "/api/v1/submissions/<int:submission_id>",
    "One submission with its report",
    response=c.Submission,
    errors=(403, 404),
)
def get_submission(submission_id: int) -> ResponseReturnValue:
    return jsonify(workflow.get_submission(_store(), current_user(), submission_id))


@operation(
    bp,
    "POST",
    "/api/v1/submissions/<int:submission_id>/<any(approve, reject):action>",
    "Approve (into a new master version) or reject a submission, with a comment",
    response=c.Decided,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=_approver,
    idempotent_key=True,
    paths=("/api/v1/submissions/{submission_id}/approve", "/api/v1/submissions/{submission_id}/reject"),
)
def decide(submission_id: int, action: str, body: c.DecisionBody) -> ResponseReturnValue:
    user = current_user()
    verdict = "approved" if action == "approve" else "rejected"
    return _idempotent(
        user,
        (str(submission_id), verdict, body.comment, body.step or ""),
        lambda idem: workflow.decide(
            _store(),
            _schema(),
            user,
            submission_id,
            verdict,
            body.comment,
            idem,
            over_allocation=_policy(),
            follow_ups=follow_ups(),
            step=body.step,
        ),
        200,
    )


@operation(
    bp,
    "GET",
    "/api/v1/approvals",
    "The caller's approval queue (submissions and transfers waiting for a step they may take) and every "
    "submission in review they may read, each with its place in its chain",
    response=c.ApprovalQueue,
    errors=(403,),
    gate=_planner,
)
def approval_queue() -> ResponseReturnValue:
    return jsonify(workflow.approval_queue(_store(), current_user()))


@operation(
    bp,
    "GET",
    "/api/v1/master",
    "The master budget: each team's approved plan (JSON, or ?format=xlsx)",
    response=c.MasterAnswer,
    errors=(403,),
    query=c.MasterQuery,
    scopes=ADDIN_SCOPES,
)
def master(query: c.MasterQuery) -> ResponseReturnValue:
    """The current master as JSON, or with ?format=xlsx as the master workbook (?as_of= for what is closed)."""
    user = current_user()
    if query.format == "json":
        return jsonify(reports.master_json(_master(user)))
    _, data = master_workbook_bytes(_store(), _schema(), user, query.as_of or dt.date.today())
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="master.xlsx")


@operation(
    bp,
    "GET",
    "/api/v1/master/versions",
    "Every master version, newest first",
    response=c.Versions,
    errors=(403,),
    scopes=ADDIN_SCOPES,
)
def master_versions() -> ResponseReturnValue:
    return jsonify({"versions": workflow.master_versions(_store(), current_user())})


@operation(
    bp,
    "GET",
    "/api/v1/master/version",
    "The current master version, allocation revision and actuals import (a cheap check for live cells)",
    response=c.MasterKey,
    scopes=ADDIN_SCOPES,
)
def master_version() -> ResponseReturnValue:
    return jsonify(master_model.current_key(_store()))  # any token: the ids say when, never what, changed


@operation(
    bp,
    "GET",
    "/api/v1/master/versions/<int:old>/diff/<int:new>",
    "What changed between two master versions",
    response=c.Diff,
    errors=(403, 404),
    scopes=ADDIN_SCOPES,
)
def master_diff(old: int, new: int) -> ResponseReturnValue:
    return jsonify(workflow.master_diff(_store(), current_user(), old, new))


@operation(
    bp,
    "GET",
    "/api/v1/audit",
    "The newest audit events (finance and admins)",
    response=c.Audit,
    errors=(403,),
    query=c.AuditQuery,
)
def audit_log(query: c.AuditQuery) -> ResponseReturnValue:
    return jsonify({"events": workflow.audit(_store(), current_user(), query.limit)})


@operation(
    bp,
    "GET",
    "/api/v1/templates/<team>.xlsx",
    "The team's template, pre-filled with its approved plan",
    response=None,
    errors=(403, 404),
    produces=XLSX,
)
def team_template(team: str) -> ResponseReturnValue:
    user = current_user()
    with tempfile.TemporaryDirectory() as folder:
        path = workflow.team_template(_store(), _schema(), user, team, Path(folder) / f"plan-{team}.xlsx")
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=f"plan-{team}.xlsx")


@operation(
    bp,
    "GET",
    "/api/v1/rollup",
    "Planned spend (or another measure) by any dimensions and period",
    response=c.RollupAnswer,
    errors=(403,),
    query=c.RollupQuery,
    scopes=ADDIN_SCOPES,
)
def rollup(query: c.RollupQuery) -> ResponseReturnValue:
    view = _master(current_user())
    return jsonify(reports.rollup_json(view, query.by, query.period, query.measure))


@operation(
    bp,
    "GET",
    "/api/v1/variance",
    "Plan to date against actual spend, with the allocation",
    response=c.VarianceAnswer,
    errors=(403,),
    query=c.VarianceQuery,
    scopes=ADDIN_SCOPES,
)
def variance(query: c.VarianceQuery) -> ResponseReturnValue:
    as_of = query.as_of.isoformat() if query.as_of else None
    return jsonify(reports.variance_json(_master(current_user()), query.by, as_of))


@operation(
    bp,
    "GET",
    "/api/v1/allocations",
    "The allocations in force (a marketer: their regions')",
    response=c.Allocations,
    errors=(403,),
    scopes=ADDIN_SCOPES,
)
def allocations() -> ResponseReturnValue:
    return jsonify(reports.allocations_json(_master(current_user())))


@operation(
    bp,
    "PUT",
    "/api/v1/allocations",
    "Replace the allocations in force (a new revision)",
    response=c.Allocations,
    errors=(403, 422),
    body=c.AllocationsBody,
    gate=_finance("sets allocations"),
)
def put_allocations(body: c.AllocationsBody) -> ResponseReturnValue:
    user = current_user()
    allocation_rules.put_allocations(_store(), _schema(), user, body.model_dump())
    return jsonify(reports.allocations_json(_master(user)))


@operation(
    bp,
    "POST",
    "/api/v1/actuals",
    "Import the finance system's export of actual spend (CSV or xlsx; multipart field file, or the raw body)",
    response=c.ActualsImport,
    status=201,
    errors=(403, 422),
    query=c.ActualsQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=_finance("imports actuals"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_actuals(query: c.ActualsQuery) -> ResponseReturnValue:
    """The finance system's export as a multipart upload (field `file`) or as the raw CSV/xlsx body.

    With `Prefer: respond-async` (RFC 7240) a large export is imported by a background job: the
    answer is 202 with the job at once (its Location to follow; `wait=N` as well waits up to N
    seconds), and the job's result is the import's answer, or its issues when the file is refused.
    """
    user = current_user()
    raw, filename = uploaded(query.filename, "the export", EXPORT_EMPTY)
    if _prefers("respond-async"):
        given = {"date_order": query.date_order} if query.date_order else {}
        return _job_answer(user, jobs.enqueue(current_app, "actuals.import", given, user, (raw, filename)))
    return _idempotent(
        user,
        (raw, query.date_order or ""),
        lambda idem: actuals.import_actuals(
            _store(), _schema(), user, raw, filename, idem, date_order=query.date_order
        ),
        201,
    )


def _spend_import(kind: str, query: c.ActualsQuery, run: Callable[..., Any]) -> ResponseReturnValue:
    """A PO or invoice export: imported now (`run(user, raw, filename, idem)`), or by the job `kind` when asked."""
    user = current_user()
    raw, filename = uploaded(query.filename, "the export", EXPORT_EMPTY)
    if _prefers("respond-async"):
        given = {"date_order": query.date_order} if query.date_order else {}
        return _job_answer(user, jobs.enqueue(current_app, kind, given, user, (raw, filename)))
    return _idempotent(user, (raw, query.date_order or ""), lambda idem: run(user, raw, filename, idem))


@operation(
    bp,
    "POST",
    "/api/v1/purchase-orders",
    "Import purchase orders from the procurement or ERP system (CSV or xlsx): new and changed POs are stored",
    response=c.SpendImportAnswer,
    status=201,
    errors=(403, 422),
    query=c.ActualsQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=_finance("imports purchase orders"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_purchase_orders(query: c.ActualsQuery) -> ResponseReturnValue:
    """201 with the report when some PO was new or changed, 200 when the export held nothing new.

    With `Prefer: respond-async` the export is imported by a background job (202), as actuals are.
    """
    return _spend_import(
        "purchase_orders.import",
        query,
        lambda user, raw, filename, idem: spend.import_purchase_orders(
            _store(), _schema(), user, raw, filename, _policy(), idem, date_order=query.date_order
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
    query=c.ActualsQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=_finance("imports invoices"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_invoices(query: c.ActualsQuery) -> ResponseReturnValue:
    """201 with the report when some invoice was new or changed, 200 when the export held nothing new.

    With `Prefer: respond-async` the export is imported by a background job (202), as actuals are.
    """
    return _spend_import(
        "invoices.import",
        query,
        lambda user, raw, filename, idem: spend.import_invoices(
            _store(), _schema(), user, raw, filename, idem, date_order=query.date_order
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
    gate=_planner,
)
def list_purchase_orders(query: c.PurchaseOrdersQuery) -> ResponseReturnValue:
    return jsonify(spend_report.purchase_orders_json(_master(current_user()), query.status))


@operation(
    bp,
    "GET",
    "/api/v1/spend",
    "Plan, committed (open PO), invoiced, accrued and remaining by line, team or region",
    response=c.SpendAnswer,
    errors=(403, 404),
    query=c.SpendQuery,
    gate=_planner,
)
def spend_view(query: c.SpendQuery) -> ResponseReturnValue:
    return jsonify(spend_report.spend_json(_master(current_user()), query.by, query.month))


@operation(
    bp,
    "GET",
    "/api/v1/accruals",
    "Which months' accruals are closed, and the month being closed",
    response=c.AccrualMonths,
    errors=(403,),
    gate=_planner,
)
def accrual_months() -> ResponseReturnValue:
    view = _master(current_user())
    return jsonify({"month": accruals.default_month(view), "closed": accruals.closes_json(_store())})


@operation(
    bp,
    "GET",
    "/api/v1/accruals/<month>",
    "A fiscal month's accrual: each PO's, and totals by team and region (a closed month's as it was closed)",
    response=c.AccrualAnswer,
    errors=(403, 404),
    gate=_planner,
)
def accrual_report(month: str) -> ResponseReturnValue:
    return jsonify(accruals.report(_store(), _master(current_user()), month))


@operation(
    bp,
    "GET",
    "/api/v1/accruals/<month>/journal.csv",
    "The month's accrual as a journal for the general ledger (CSV), with its reversal on the next month's first day",
    response=None,
    errors=(403, 404, 409),
    query=c.JournalQuery,
    produces="text/csv",
    gate=_finance("exports the accrual journal"),
)
def accrual_journal(month: str, query: c.JournalQuery) -> ResponseReturnValue:
    text = accruals.journal_csv(_store(), _master(current_user()), month, query.entries)
    name = f"accrual-{_schema().calendar.label}-{month.strip().lower()}.csv"
    return send_file(io.BytesIO(text.encode()), mimetype="text/csv", as_attachment=True, download_name=name)


@operation(
    bp,
    "POST",
    "/api/v1/accruals/<month>/close",
    "Close a month's accrual: its entries are kept as they are now and never change (months close in order)",
    response=c.AccrualAnswer,
    errors=(403, 404, 409),
    gate=_finance("closes the month-end accrual"),
)
def close_accrual(month: str) -> ResponseReturnValue:
    return jsonify(accruals.close(_store(), _schema(), current_user(), month))


@operation(
    bp,
    "POST",
    "/api/v1/outcomes",
    "Import results from the CRM or marketing automation (a Salesforce, HubSpot or Marketo export, or any with a "
    "column mapping; CSV or xlsx, multipart field file or the raw body)",
    response=c.OutcomesImport,
    status=201,
    errors=(403, 422),
    query=c.OutcomesQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=_finance("imports results"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_outcomes(query: c.OutcomesQuery) -> ResponseReturnValue:
    """An export of results: 201 with the import and its report, 200 when the same export is already in force.

    With `Prefer: respond-async` a large export is imported by a background job (202), as actual spend is.
    """
    user = current_user()
    raw, filename = uploaded(query.filename, "the export", EXPORT_EMPTY)
    mapping = outcomes.read_mapping(query.mapping)
    if _prefers("respond-async"):
        args = {
            "preset": query.preset,
            "source": query.source,
            "mapping": mapping,
            "month": query.month,
            "date_order": query.date_order,
        }
        return _job_answer(user, jobs.enqueue(current_app, "outcomes.import", args, user, (raw, filename)))

    def run(idem: Idempotency | None) -> tuple[int, dict[str, Any]]:
        preset, parsed = outcomes.parse_file(
            raw, filename, _schema(), query.preset, mapping, query.month, query.date_order
        )
        return outcomes.import_outcomes(
            _store(), _schema(), user, parsed, raw, query.source or preset, preset, filename, idem
        )

    return _idempotent(user, (raw, query.model_dump_json()), run)


@operation(
    bp,
    "POST",
    "/api/v1/outcomes:push",
    "Push results from an integration as JSON rows (one source; each row a line ID, campaign code or name, "
    "a month, and its results)",
    response=c.OutcomesImport,
    status=201,
    errors=(403, 422),
    body=c.OutcomesPush,
    gate=_finance("imports results"),
    idempotent_key=True,
)
def push_outcomes(body: c.OutcomesPush) -> ResponseReturnValue:
    user = current_user()
    rows = [r.model_dump(exclude_none=True) for r in body.rows]
    for row in rows:
        if isinstance(row.get("month"), dt.date):
            row["month"] = row["month"].isoformat()
    raw = json.dumps({"source": body.source, "month": body.month, "rows": rows}, sort_keys=True, default=str).encode()

    def run(idem: Idempotency | None) -> tuple[int, dict[str, Any]]:
        parsed = outcomes.parse_json_rows(rows, _schema(), body.month)
        return outcomes.import_outcomes(_store(), _schema(), user, parsed, raw, body.source, "json", None, idem)

    return _idempotent(user, (raw,), run)


@operation(
    bp,
    "GET",
    "/api/v1/outcomes",
    "Every results import, newest first, with who imported it and the months it is in force for",
    response=c.OutcomesImports,
    errors=(403,),
    gate=_finance("reads the results imports"),
)
def list_outcomes() -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify({"imports": outcomes.imports_json(session)})


@operation(
    bp,
    "GET",
    "/api/v1/performance",
    "What the spend bought: results, unit costs, ROI and funnel conversion against plan and targets",
    response=c.PerformanceAnswer,
    errors=(403,),
    query=c.PerformanceQuery,
    scopes=ADDIN_SCOPES,
)
def performance_view(query: c.PerformanceQuery) -> ResponseReturnValue:
    view, per_line = performance.for_user(_store(), _schema(), current_user())
    return jsonify(performance.performance_json(view, per_line, query.by, query.period))


def _notifications_of(user: User) -> dict[str, Any]:
    return {"email": user.email, "address": notifications.address_of(user), "enabled": user.notify}


@operation(bp, "GET", "/api/v1/me/notifications", "The caller's notification settings", response=c.NotificationsAnswer)
def my_notifications() -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify(_notifications_of(session.get(User, current_user().id)))


@operation(
    bp,
    "PUT",
    "/api/v1/me/notifications",
    "Set where the caller's notification emails go, or turn them off or on",
    response=c.NotificationsAnswer,
    body=c.NotificationsBody,
)
def set_my_notifications(body: c.NotificationsBody) -> ResponseReturnValue:
    sent = body.model_dump(exclude_unset=True)
    with _store().transaction() as session:
        me = session.get(User, current_user().id, with_for_update=True)
        if "email" in sent:
            me.email = sent["email"]
        if sent.get("enabled") is not None:
            me.notify = sent["enabled"]
        return jsonify(_notifications_of(me))


@operation(
    bp,
    "POST",
    "/api/v1/baselines",
    "Lock the master and allocations in force as the year's budget (a named, immutable baseline; a re-baseline "
    "is a new one)",
    response=c.BaselineAnswer,
    status=201,
    errors=(403, 409),
    body=c.BaselineBody,
    gate=_finance("locks the budget baseline"),
)
def lock_baseline(body: c.BaselineBody) -> ResponseReturnValue:
    return jsonify(baselines.lock_baseline(_store(), _schema(), current_user(), body.name, body.comment)), 201


@operation(
    bp,
    "GET",
    "/api/v1/baselines",
    "Every budget baseline, newest first",
    response=c.Baselines,
    errors=(403,),
    gate=_planner,
)
def list_baselines() -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify({"baselines": baselines.baselines_json(session)})


@operation(
    bp,
    "GET",
    "/api/v1/budget",
    "The budget (a baseline, default the newest) against the current plan, the allocations and actual spend",
    response=c.BudgetAnswer,
    errors=(403, 404),
    query=c.BudgetQuery,
    gate=_planner,
)
def budget_view(query: c.BudgetQuery) -> ResponseReturnValue:
    answer = baselines.budget_json(_store(), _schema(), current_user(), query.baseline, query.by, query.period)
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/cycles",
    "Open a reforecast cycle: lock its closed months (m01 through `through`) and set its deadline",
    response=c.CycleAnswer,
    status=201,
    errors=(403, 409),
    body=c.CycleBody,
    gate=_finance("opens reforecast cycles"),
)
def open_cycle(body: c.CycleBody) -> ResponseReturnValue:
    answer = cycles.open_cycle(
        _store(), _schema(), current_user(), body.name, body.through, body.deadline, body.comment
    )
    return jsonify(answer), 201


@operation(
    bp,
    "GET",
    "/api/v1/cycles",
    "Every reforecast cycle, newest first, with each of the caller's teams' reforecast status",
    response=c.Cycles,
    errors=(403,),
    gate=_planner,
)
def list_cycles() -> ResponseReturnValue:
    return jsonify({"cycles": cycles.cycles_json(_store(), _schema(), current_user())})


@operation(
    bp,
    "GET",
    "/api/v1/cycles/<int:cycle_id>",
    "One reforecast cycle and its teams' reforecast status",
    response=c.CycleAnswer,
    errors=(403, 404),
    gate=_planner,
)
def get_cycle(cycle_id: int) -> ResponseReturnValue:
    return jsonify(cycles.get_cycle(_store(), _schema(), current_user(), cycle_id))


@operation(
    bp,
    "POST",
    "/api/v1/cycles/<int:cycle_id>/close",
    "Close a reforecast cycle (its closed months stay locked)",
    response=c.CycleAnswer,
    errors=(403, 404, 409),
    gate=_finance("closes reforecast cycles"),
)
def close_cycle(cycle_id: int) -> ResponseReturnValue:
    return jsonify(cycles.close_cycle(_store(), _schema(), current_user(), cycle_id))


_SCENARIOS = "tries what-if scenarios"


@operation(
    bp,
    "POST",
    "/api/v1/scenarios",
    "Make a what-if scenario from the approved master or the latest estimate (never the master until promoted)",
    response=c.ScenarioAnswer,
    status=201,
    errors=(403, 409),
    body=c.ScenarioBody,
    gate=_finance(_SCENARIOS),
)
def make_scenario(body: c.ScenarioBody) -> ResponseReturnValue:
    answer = scenarios.create(_store(), _schema(), current_user(), body.name, body.origin, body.comment)
    return jsonify(answer), 201


@operation(
    bp,
    "GET", "/api/v1/scenarios", "Every what-if scenario, newest first", response=c.Scenarios, errors=(403,),
    gate=_finance(_SCENARIOS),
)  # fmt: skip
def list_scenarios() -> ResponseReturnValue:
    return jsonify({"scenarios": scenarios.list_json(_store(), current_user())})


@operation(
    bp,
    "GET", "/api/v1/scenarios/<int:scenario_id>", "One what-if scenario", response=c.ScenarioAnswer,
    errors=(403, 404), gate=_finance(_SCENARIOS),
)  # fmt: skip
def get_scenario(scenario_id: int) -> ResponseReturnValue:
    return jsonify(scenarios.get_json(_store(), current_user(), scenario_id))


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/changes",
    "Change a scenario (scale a channel, region or team in a period; move an amount of a line; drop lines): "
    "a new revision, all changes or none",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409, 422),
    body=c.ScenarioChanges,
    gate=_finance(_SCENARIOS),
)
def change_scenario(scenario_id: int, body: c.ScenarioChanges) -> ResponseReturnValue:
    answer = scenarios.change(_store(), _schema(), current_user(), scenario_id, body.model_dump())
    return jsonify(answer)


@operation(
    bp,
    "GET",
    "/api/v1/scenarios/<int:scenario_id>.xlsx",
    "The scenario's lines as a workbook to edit and upload again (PUT .../lines)",
    response=None,
    errors=(403, 404),
    produces=XLSX,
    gate=_finance(_SCENARIOS),
)
def scenario_workbook(scenario_id: int) -> ResponseReturnValue:
    name = f"scenario-{scenario_id}.xlsx"
    with tempfile.TemporaryDirectory() as folder:
        path = scenarios.workbook(_store(), _schema(), current_user(), scenario_id, Path(folder) / name)
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)


@operation(
    bp,
    "PUT",
    "/api/v1/scenarios/<int:scenario_id>/lines",
    "The scenario's lines as an edited workbook holds them (multipart field file, or the raw body): a new "
    "revision; 409 when the scenario changed since the workbook was downloaded",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409, 422),
    query=c.ScenarioUploadQuery,
    raw=(XLSX, "multipart/form-data"),
    gate=_finance(_SCENARIOS),
)
def upload_scenario(scenario_id: int, query: c.ScenarioUploadQuery) -> ResponseReturnValue:
    raw, filename = uploaded(query.filename, "the workbook", "the workbook is empty; upload the scenario's xlsx")
    name = filename or f"scenario-{scenario_id}.xlsx"
    return jsonify(scenarios.upload(_store(), _schema(), current_user(), scenario_id, raw, name))


@operation(
    bp,
    "GET",
    "/api/v1/scenarios/<int:scenario_id>/compare",
    "A scenario against its origin: planned spend by group and period, and each line added, dropped or changed",
    response=c.ScenarioComparison,
    errors=(403, 404),
    query=c.CompareQuery,
    gate=_finance(_SCENARIOS),
)
def compare_scenario(scenario_id: int, query: c.CompareQuery) -> ResponseReturnValue:
    answer = scenarios.compare(_store(), _schema(), current_user(), scenario_id, query.by, query.period)
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/promote",
    "Promote a scenario: to the master (a new approved plan per changed team) or to the allocations",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409),
    body=c.ScenarioPromotion,
    gate=_finance("promotes what-if scenarios"),
)
def promote_scenario(scenario_id: int, body: c.ScenarioPromotion) -> ResponseReturnValue:
    answer = scenarios.promote(
        _store(), _schema(), current_user(), scenario_id, body.target, body.comment, over_allocation=_policy()
    )
    return jsonify(answer)


@operation(
    bp,
    "POST",
    "/api/v1/scenarios/<int:scenario_id>/discard",
    "Discard a scenario: it changes no more, and nothing of it reaches the master",
    response=c.ScenarioAnswer,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=_finance(_SCENARIOS),
)
def discard_scenario(scenario_id: int, body: c.DecisionBody) -> ResponseReturnValue:
    return jsonify(scenarios.discard(_store(), current_user(), scenario_id, body.comment))


@operation(
    bp,
    "POST",
    "/api/v1/transfers",
    "Ask to move an amount of allocation from one (region, quarter, channel) to another, saying why",
    response=c.TransferAnswer,
    status=201,
    errors=(403, 409, 422),
    body=c.TransferBody,
    gate=_planner,
)
def request_transfer(body: c.TransferBody) -> ResponseReturnValue:
    data = body.model_dump(by_alias=True)
    answer = transfers.request_transfer(
        _store(), _schema(), current_user(), data, transfers.finance_limit(current_app.config), _policy()
    )
    return jsonify(answer), 201


@operation(
    bp,
    "GET",
    "/api/v1/transfers",
    "Budget transfers the caller may read, newest first, with who asked, approved and why",
    response=c.Transfers,
    errors=(403,),
    gate=_planner,
)
def list_transfers() -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify({"transfers": transfers.transfers_json(session, session.merge(current_user()))})


@operation(
    bp,
    "GET",
    "/api/v1/transfers/<int:transfer_id>",
    "One budget transfer and its approvals",
    response=c.TransferAnswer,
    errors=(403, 404),
    gate=_planner,
)
def get_transfer(transfer_id: int) -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify(transfers.transfer_json(session, session.merge(current_user()), transfer_id))


@operation(
    bp,
    "POST",
    "/api/v1/transfers/<int:transfer_id>/<any(approve, reject):action>",
    "Approve or reject a budget transfer at the caller's step; the last approval moves the allocation",
    response=c.TransferAnswer,
    errors=(403, 404, 409),
    body=c.DecisionBody,
    body_required=False,
    gate=_planner,
    paths=("/api/v1/transfers/{transfer_id}/approve", "/api/v1/transfers/{transfer_id}/reject"),
)
def decide_transfer(transfer_id: int, action: str, body: c.DecisionBody) -> ResponseReturnValue:
    verdict = "approved" if action == "approve" else "rejected"
    answer = transfers.decide_transfer(
        _store(), _schema(), current_user(), transfer_id, verdict, body.comment, _policy()
    )
    return jsonify(answer)


@operation(
    bp, "GET", "/api/v1/periods", "The fiscal months and which are locked", response=c.Periods, scopes=ADDIN_SCOPES
)
def periods() -> ResponseReturnValue:
    return jsonify(period_locks.periods_view(_store(), _schema()))


@operation(
    bp,
    "POST",
    "/api/v1/periods/<any(lock, unlock):action>",
    "Lock or unlock fiscal months: no newly approved plan may change a locked month",
    response=c.Periods,
    errors=(403,),
    body=c.PeriodsBody,
    gate=_finance("locks and unlocks periods"),
    paths=("/api/v1/periods/lock", "/api/v1/periods/unlock"),
)
def lock_periods(action: str, body: c.PeriodsBody) -> ResponseReturnValue:
    user = current_user()
    data = body.model_dump(exclude_none=True)
    return jsonify(period_locks.set_locks(_store(), _schema(), user, data, lock=action == "lock"))


@operation(bp, "GET", "/api/v1/gsheets/teams", "The teams' Google plan sheets", response=c.Sheets, errors=(403,))
def gsheets_teams() -> ResponseReturnValue:
    return jsonify({"sheets": sheets_sync.list_sheets(_store(), current_user())})


@operation(
    bp,
    "POST",
    "/api/v1/gsheets/teams/<team>",
    "Create the team's Google plan sheet and share it",
    response=c.SheetCreated,
    status=201,
    errors=(403, 404, 409, 502, 503),
    body=c.SheetCreateBody,
    body_required=False,
    gate=_finance("creates team plan sheets"),
)
def gsheets_create(team: str, body: c.SheetCreateBody) -> ResponseReturnValue:
    """Create the team's Google plan sheet (finance): {"editors": [emails], "replace": false}."""
    user = current_user()
    result = sheets_sync.create_for_team(
        _store(), _schema(), user, team, current_app.config, body.editors, replace=body.replace
    )
    return jsonify(result), 201


@operation(
    bp,
    "POST",
    "/api/v1/gsheets/teams/<team>/pull",
    "Submit the team's Google sheet as a plan",
    response=c.Submission,
    status=201,
    errors=(403, 404, 409, 422, 502, 503),
    idempotent_key=True,
)
def gsheets_pull(team: str) -> ResponseReturnValue:
    user = current_user()
    return _idempotent(
        user,
        ("gsheets-pull", team),
        lambda idem: sheets_sync.pull_for_team(_store(), _schema(), user, team, current_app.config, _policy(), idem),
        201,
    )


@operation(
    bp,
    "POST",
    "/api/v1/gsheets/master/push",
    "Push the master, its rollup and variance to Google, atomically",
    response=c.Pushed,
    errors=(403, 502, 503),
    body=c.PushBody,
    body_required=False,
    gate=_finance("pushes the master budget"),
)
def gsheets_push(body: c.PushBody) -> ResponseReturnValue:
    """A push job (202, its address in Location); `Prefer: wait=N` waits up to N seconds for it to finish."""
    user = current_user()
    return _job_answer(user, sheets_sync.request_push(current_app, user, body.spreadsheet_id))


def _job_answer(user: User, job_id: str) -> ResponseReturnValue:
    """A job just queued: 202 with where to follow it, or 200 once finished when the client asked to wait."""
    seconds = _preferred_wait()
    answer = jobs.wait(_store(), user, job_id, seconds) if seconds else jobs.get(_store(), user, job_id)
    status = 200 if answer["status"] in jobs.TERMINAL else 202
    headers = {"Location": f"/api/v1/jobs/{job_id}"}
    if seconds:
        headers["Preference-Applied"] = f"wait={seconds:g}"
    return jsonify(answer), status, headers


def _prefers(token: str) -> bool:
    """Whether the request's RFC 7240 `Prefer` header names `token` (respond-async, say)."""
    return any(
        part.strip().partition("=")[0].strip().lower() == token for part in request.headers.get("Prefer", "").split(",")
    )


def _preferred_wait() -> float:
    """The seconds of an RFC 7240 `Prefer: wait=N` header (0: none; at most jobs.WAIT_LIMIT)."""
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return min(max(float(value.strip().strip('"')), 0.0), jobs.WAIT_LIMIT)
            except ValueError:
                raise ServiceError(f"Prefer: wait={value.strip()!r} is not a number of seconds") from None
    return 0.0


@operation(
    bp,
    "GET",
    "/api/v1/jobs",
    "Background jobs, newest first (finance: all; others: their own)",
    response=c.JobList,
    query=c.JobsQuery,
)
def job_list(query: c.JobsQuery) -> ResponseReturnValue:
    return jsonify({"jobs": jobs.listing(_store(), current_user(), query.limit)})


@operation(
    bp,
    "GET",
    "/api/v1/jobs/<job_id>",
    "One background job; Prefer: wait=N waits up to N s for it to finish",
    response=c.JobAnswer,
    errors=(404,),
)
def job(job_id: str) -> ResponseReturnValue:
    user = current_user()
    seconds = _preferred_wait()
    answer = jobs.wait(_store(), user, job_id, seconds) if seconds else jobs.get(_store(), user, job_id)
    return jsonify(answer)


@operation(
    bp,
    "GET",
    "/api/v1/jobs/<job_id>/file",
    "The file a job made (the master workbook it built)",
    response=None,
    errors=(404,),
    produces=XLSX,
)
def job_file(job_id: str) -> ResponseReturnValue:
    row = jobs.file_of(_store(), current_user(), job_id)
    return send_file(io.BytesIO(row.data), mimetype=row.media_type, as_attachment=True, download_name=row.filename)


@operation(
    bp,
    "POST",
    "/api/v1/master/workbook",
    "Build the master workbook as a background job (202; its file when done)",
    response=c.JobAnswer,
    status=202,
    errors=(403,),
    body=c.WorkbookJobBody,
    body_required=False,
)
def master_workbook_job(body: c.WorkbookJobBody) -> ResponseReturnValue:
    user = current_user()
    auth.require_plan_reader(user)
    as_of = (body.as_of or dt.date.today()).isoformat()
    return _job_answer(user, jobs.enqueue(current_app, "master.workbook", {"as_of": as_of}, user))


@operation(
    bp,
    "GET",
    "/api/v1/functions",
    "The function catalogue as Office.js custom-functions metadata",
    response=c.Catalogue,
    scopes=ADDIN_SCOPES,
)
def functions_metadata() -> ResponseReturnValue:
    """The catalogue as Office.js custom-functions metadata (functions.json)."""
    return jsonify(functions_api.CATALOG.metadata())


@operation(
    bp,
    "POST",
    "/api/v1/functions:batch",
    "Evaluate many cells in one request, as Excel batches them",
    response=c.BatchAnswer,
    errors=(403,),
    body=c.BatchBody,
    scopes=ADDIN_SCOPES,
)
def functions_batch(body: c.BatchBody) -> ResponseReturnValue:
    """Many calls in one request, as Excel batches custom functions: {"calls": [{"name", "args"}]}."""
    calls = [{"name": call.name, "args": call.args} for call in body.calls]  # validated already: plain lists
    answers = functions_api.evaluate(_store(), _schema(), current_user(), calls, fingerprint=request.get_data())
    return jsonify({"results": answers})


@operation(
    bp,
    "POST",
    "/api/v1/functions/<name>",
    "Evaluate one cell: arguments as 2-D arrays",
    response=c.FunctionAnswer,
    errors=(403,),
    body=c.FunctionBody,
    body_required=False,
    scopes=ADDIN_SCOPES,
)
def function_call(name: str, body: c.FunctionBody) -> ResponseReturnValue:
    """One call: {"args": [2-D array, ...]} -> {"result": 2-D array} or {"error": {"code", "message"}}."""
    [answer] = functions_api.evaluate(_store(), _schema(), current_user(), [{"name": name, "args": body.args}])
    return jsonify(answer)


ADDIN_ROOT = Path(__file__).resolve().parents[2] / "addin"
ADDIN_FILES = {"officejs": ADDIN_ROOT / "officejs", "apps-script": ADDIN_ROOT / "apps_script"}
# What a host loads, by area: nothing else beside them (tests, npm files, notes) is ever served.
ADDIN_ALLOWED = {
    "officejs": re.compile(r"^[A-Za-z0-9_-]+\.(js|html|css|png)$"),
    "apps-script": re.compile(r"^[A-Za-z0-9_-]+\.(gs|js|html)$|^appsscript\.json$"),
}


@operation(
    bp, "GET", "/addin/functions.json", "The Office.js custom-functions metadata", response=c.Catalogue, auth=False
)
def addin_functions_json() -> ResponseReturnValue:
    """The Office.js custom-functions metadata, generated from the catalogue (never a hand-edited file)."""
    return jsonify(functions_api.CATALOG.metadata())


@operation(
    bp,
    "GET",
    "/addin/manifest.xml",
    "The Office add-in manifest, pointing at this service",
    response=None,
    auth=False,
    produces="application/xml",
)
def addin_manifest() -> ResponseReturnValue:
    """The Office add-in manifest, pointing at this service (PLANSHEET_PUBLIC_URL, else the address asked)."""
    base = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
    text_ = (ADDIN_FILES["officejs"] / "manifest.xml").read_text(encoding="utf-8").replace("{{BASE_URL}}", base)
    return current_app.response_class(text_, mimetype="application/xml")


@operation(
    bp,
    "GET",
    "/addin/<any(officejs, 'apps-script'):action>/<path:name>",
    "The add-in's static files, for sideloading",
    response=None,
    errors=(404,),
    auth=False,
    produces="application/octet-stream",
    paths=("/addin/officejs/{name}", "/addin/apps-script/{name}"),
)
def addin_file(action: str, name: str) -> ResponseReturnValue:
    """The add-in's static files (Office.js shims and task pane; the Apps Script project), for sideloading.

    The name is normalised first (no `.`, `..` or empty parts), then matched against the area's
    allow-list: a file at the top of the area with a name and type a host loads.
    """
    normal = posixpath.normpath("/" + name).lstrip("/")
    if normal != name or "/" in normal or not ADDIN_ALLOWED[action].match(normal):
        raise NotFound(f"there is no add-in file {name}")
    path = ADDIN_FILES[action] / normal
    if not path.is_file():
        raise NotFound(f"there is no add-in file {name}")
    mimetype = mimetypes.guess_type(normal)[0] or "application/octet-stream"
    return send_file(io.BytesIO(path.read_bytes()), mimetype=mimetype, max_age=300)


@operation(
    bp,
    "GET",
    "/api/v1/users",
    "Every user with role, teams and tokens (admins)",
    response=c.Users,
    errors=(403,),
    gate=_admin,
)
def users() -> ResponseReturnValue:
    with _store().reading() as session:
        return jsonify({"users": auth.users_view(session)})


@operation(
    bp,
    "POST",
    "/api/v1/tokens",
    "Create a user's API token (admins); the token is in this answer only",
    response=c.TokenCreated,
    status=201,
    errors=(403, 422),
    body=c.TokenBody,
    gate=_admin,
)
def create_token(body: c.TokenBody) -> ResponseReturnValue:
    """A new token (admin): {"name", "role", "teams"}; the token is in this answer only."""
    user = current_user()
    name = body.name.strip()
    if not name:
        raise ServiceError('send {"name": "maria@example.com", "role": "marketer", "teams": ["EMEA-ENTERPRISE"]}')
    try:
        with _store().transaction() as session:
            token = auth.create_token(
                session,
                name,
                body.role,
                body.teams,
                actor=user.id,
                approves=[g.model_dump() for g in body.approves],
                config=_schema().config,
            )
    except ValueError as exc:
        raise Unprocessable(str(exc), issues=[{"at": "approves", "message": str(exc)}]) from None
    except LookupError as exc:
        with _store().reading() as session:
            known = ", ".join(session.scalars(select(Team.id).order_by(Team.id)))
        raise Unprocessable(f"{exc.args[0]}; the teams are {known}") from None
    approves = [g.model_dump() for g in body.approves]
    return jsonify({"name": name, "role": body.role, "teams": body.teams, "approves": approves, "token": token}), 201


@operation(
    bp,
    "POST",
    "/api/v1/tokens/<token_id>/revoke",
    "Revoke a token (kept for the audit)",
    response=c.Revoked,
    errors=(403, 404),
    gate=_admin,
)
def revoke_token(token_id: str) -> ResponseReturnValue:
    user = current_user()
    with _store().transaction() as session:
        row = auth.revoke_token(session, token_id, user.id)
        if row is None:
            raise NotFound(f"there is no token {token_id}")
        return jsonify({"id": row.id, "revoked_at": row.revoked_at.isoformat()})


def _incoming(body: c.SubmissionJson | None, form: c.SubmissionForm | None) -> workflow.Incoming:
    """A plan from a multipart upload (field `file`, plus `team`) or a validated JSON body {team, lines | rows}."""
    if form is not None:
        raw, filename = uploaded(None, "the plan")
        base = _base(form.based_on_submission, form.based_on_version)
        return workflow.Incoming(form.team.strip(), "xlsx", raw, filename=filename, base=base)
    assert body is not None
    base = None
    if body.based_on is not None:
        if body.based_on.master_version is not None:
            base = {"master_version": body.based_on.master_version}
        else:
            base = {"submission": body.based_on.submission or None}
    elif "based_on" in body.model_fields_set:  # "based_on": null: the team had no approved plan
        base = {"submission": None}
    return workflow.Incoming(body.team.strip(), "json", request.get_data(), grid=_grid(body), base=base)


def _base(submission: str | None, version: str | None) -> dict[str, int | None] | None:
    """The plan's base from form fields: a submission number (0 or "none": the team had none) or a version."""
    if submission:
        number = 0 if submission == "none" else int(submission)
        return {"submission": number or None}
    if version:
        return {"master_version": int(version)}
    return None


def _grid(body: c.SubmissionJson) -> list[list[Any]]:
    """JSON lines ({"lines": [{column: value}]}) or rows ({"rows": [[header...], [...]]}) as a grid."""
    if body.rows is not None:
        return body.rows
    names = [col.name for col in _schema().input_columns]
    lines = body.lines or []
    unknown = sorted({k for line in lines for k in line} - set(names))
    if unknown:
        raise ServiceError(f"unknown column(s) {', '.join(unknown[:20])}; the columns are {', '.join(names)}")
    return [names, *([line.get(n) for n in names] for line in lines)]
