"""The service's own routes: its description (OpenAPI), liveness and readiness, background jobs, import profiles."""

from __future__ import annotations

import io

from flask import current_app, jsonify, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from sync_service.api import contracts as c
from sync_service.api import openapi
from sync_service.api.base import XLSX, bp, finance_gate, preferred_wait
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.platform import jobs, presets, profiles, readiness
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import Unprocessable


@operation(bp, "GET", "/api/v1/openapi.json", "This description (OpenAPI 3.1)", response=None, auth=False)
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())


@operation(bp, "GET", "/health", "Liveness: the service and its database answer", response=c.Health, auth=False)
def health() -> ResponseReturnValue:
    with app_store().reading() as session:
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
    return jsonify(readiness.check(current_app, app_store()))


@operation(
    bp,
    "GET",
    "/api/v1/jobs",
    "Background jobs, newest first (finance: all; others: their own)",
    response=c.JobList,
    query=c.JobsQuery,
)
def job_list(query: c.JobsQuery) -> ResponseReturnValue:
    found, following = jobs.listing(app_store(), current_user(), query.limit, query.after)
    return jsonify({"jobs": found, "next": following})


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
    seconds = preferred_wait()
    answer = jobs.wait(app_store(), user, job_id, seconds) if seconds else jobs.get(app_store(), user, job_id)
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
    row = jobs.file_of(app_store(), current_user(), job_id)
    return send_file(io.BytesIO(row.data), mimetype=row.media_type, as_attachment=True, download_name=row.filename)


# --- how exports are read: presets and saved profiles ------------------------------------------------------------


@operation(
    bp,
    "GET",
    "/api/v1/import-presets",
    "The exports each import reads as they come (NetSuite, SAP, Coupa, QuickBooks, Xero...): headers and words",
    response=c.ImportPresets,
    gate=finance_gate("reads how exports are imported"),
)
def import_presets() -> ResponseReturnValue:
    return jsonify({"presets": presets.described()})


@operation(
    bp,
    "GET",
    "/api/v1/import-profiles",
    "Saved column mappings (import profiles), by kind of import and name",
    response=c.ImportProfiles,
    query=c.ImportProfilesQuery,
    gate=finance_gate("reads import profiles"),
)
def import_profiles(query: c.ImportProfilesQuery) -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify({"profiles": profiles.listing(session, query.kind)})


@operation(
    bp,
    "POST",
    "/api/v1/import-profiles/<any(purchase_orders, invoices, actuals, results):kind>",
    "Save a new import profile: which column of an export is which field, its words, its date order",
    response=c.ImportProfileAnswer,
    status=201,
    errors=(409, 422),
    body=c.ImportProfileBody,
    gate=finance_gate("saves import profiles"),
    paths=tuple(f"/api/v1/import-profiles/{k}" for k in presets.KINDS),
)
def create_import_profile(kind: str, body: c.ImportProfileBody) -> ResponseReturnValue:
    if body.name is None:
        raise Unprocessable("name: give the new profile a name", issues=[{"at": "name", "message": "required"}])
    saved = profiles.save(app_store(), current_user(), kind, body.name, body.model_dump(), new=True)
    return jsonify(saved), 201


@operation(
    bp,
    "PUT",
    "/api/v1/import-profiles/<any(purchase_orders, invoices, actuals, results):kind>/<name>",
    "Change an import profile (a new revision; the earlier ones are kept)",
    response=c.ImportProfileAnswer,
    errors=(404, 422),
    body=c.ImportProfileBody,
    gate=finance_gate("changes import profiles"),
    paths=tuple(f"/api/v1/import-profiles/{k}/{{name}}" for k in presets.KINDS),
)
def change_import_profile(kind: str, name: str, body: c.ImportProfileBody) -> ResponseReturnValue:
    return jsonify(profiles.save(app_store(), current_user(), kind, name, body.model_dump(), new=False))


@operation(
    bp,
    "DELETE",
    "/api/v1/import-profiles/<any(purchase_orders, invoices, actuals, results):kind>/<name>",
    "Retire an import profile: it reads no more exports (its revisions are kept)",
    response=c.ImportProfileAnswer,
    errors=(404,),
    gate=finance_gate("retires import profiles"),
    paths=tuple(f"/api/v1/import-profiles/{k}/{{name}}" for k in presets.KINDS),
)
def retire_import_profile(kind: str, name: str) -> ResponseReturnValue:
    return jsonify(profiles.save(app_store(), current_user(), kind, name, {}, new=False, retire=True))
