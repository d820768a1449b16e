"""The master's read routes: the master (JSON or workbook), rollup, variance, allocations in force, performance."""

from __future__ import annotations

import datetime as dt
import io

from flask import current_app, jsonify, send_file
from flask.typing import ResponseReturnValue

from sync_service.access import auth
from sync_service.api import contracts as c
from sync_service.api.base import ADDIN_SCOPES, XLSX, bp, job_answer, master_for
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.documents.master_workbook import master_workbook_bytes
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.platform import jobs
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.context import year_schema


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
        return jsonify(reports.master_json(master_for(user)))
    _, data = master_workbook_bytes(app_store(), app_schema(), user, query.as_of or dt.date.today())
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="master.xlsx")


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
    view = master_for(current_user())
    return jsonify(reports.rollup_json(view, query.by, query.period, query.measure))


@operation(
    bp,
    "GET",
    "/api/v1/year-over-year",
    "A year's plan against the previous year's (or `against`'s) plan, actual spend and latest estimate",
    response=c.YearOverYearAnswer,
    errors=(403, 404),
    query=c.YearOverYearQuery,
    scopes=ADDIN_SCOPES,
)
def year_over_year(query: c.YearOverYearQuery) -> ResponseReturnValue:
    user, schema = current_user(), app_schema()
    this = master_model.load(app_store(), schema, user)  # 403 for a caller who reads no plans, before the year
    earlier = year_schema(schema, query.against or schema.calendar.year - 1)
    last = master_model.load(app_store(), earlier, user)
    return jsonify(reports.year_over_year_json(this, last, query.by, query.period))


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
    return jsonify(reports.variance_json(master_for(current_user()), query.by, as_of))


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
    return jsonify(reports.allocations_json(master_for(current_user())))


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
    view, per_line = performance.for_user(app_store(), app_schema(), current_user())
    return jsonify(performance.performance_json(view, per_line, query.by, query.period))


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
    return job_answer(user, jobs.enqueue(current_app, "master.workbook", {"as_of": as_of}, user))
