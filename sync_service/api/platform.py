"""The service's own routes: its description (OpenAPI), liveness and readiness, and the background jobs."""

from __future__ import annotations

import io

from flask import current_app, jsonify, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from sync_service.api import contracts as c
from sync_service.api import openapi
from sync_service.api.base import XLSX, bp, preferred_wait
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.platform import jobs, readiness
from sync_service.platform.context import store as app_store


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
