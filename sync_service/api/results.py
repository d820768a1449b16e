"""The results routes: actual spend from the finance system, and results from the CRM."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import EXPORT_EMPTY, XLSX, bp, export_import, finance_gate, idempotent, job_answer, prefers
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.api.uploads import uploaded
from sync_service.platform import jobs, profiles
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import ServiceError
from sync_service.platform.idempotency import Idempotency
from sync_service.results import actuals, outcomes


@operation(
    bp,
    "POST",
    "/api/v1/actuals",
    "Import the finance system's export of actual spend (CSV or xlsx; multipart field file, or the raw body)",
    response=c.ActualsImport,
    status=201,
    errors=(403, 422),
    query=c.ExportQuery,
    raw=("text/csv", XLSX, "multipart/form-data"),
    gate=finance_gate("imports actuals"),
    idempotent_key=True,
    accepted=c.JobAnswer,
)
def import_actuals(query: c.ExportQuery) -> ResponseReturnValue:
    """The finance system's export as a multipart upload (field `file`) or as the raw CSV/xlsx body.

    With `Prefer: respond-async` (RFC 7240) a large export is imported by a background job: the
    answer is 202 with the job at once (its Location to follow; `wait=N` as well waits up to N
    seconds), and the job's result is the import's answer, or its issues when the file is refused.
    """
    return export_import(
        "actuals.import",
        query,
        lambda user, raw, filename, idem, how: actuals.import_actuals(
            app_store(), app_schema(), user, raw, filename, idem, date_order=query.date_order, how=how
        ),
        201,
    )


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
    gate=finance_gate("imports results"),
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
    date_order = query.date_order
    if query.profile is not None:  # a saved mapping: its columns, its date order (404 naming the profiles there are)
        if mapping:
            raise ServiceError("send a mapping or a profile, not both: the profile is a saved mapping")
        how = profiles.how(app_store(), "results", query.profile)
        mapping, date_order = dict(how.mapping or {}), date_order or how.date_order
    if prefers("respond-async"):
        args = {
            "preset": query.preset,
            "source": query.source,
            "mapping": mapping,
            "month": query.month,
            "date_order": date_order,
            "profile": query.profile,
        }
        return job_answer(user, jobs.enqueue(current_app, "outcomes.import", args, user, (raw, filename)))

    def run(idem: Idempotency | None) -> tuple[int, dict[str, Any]]:
        schema = app_schema()
        preset, parsed = outcomes.parse_file(raw, filename, schema, query.preset, mapping, query.month, date_order)
        source = query.source or preset
        return outcomes.import_outcomes(
            app_store(), app_schema(), user, parsed, raw, source, preset, filename, idem, profile=query.profile
        )

    return idempotent(user, (raw, query.model_dump_json()), run)


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
    gate=finance_gate("imports results"),
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
        parsed = outcomes.parse_json_rows(rows, app_schema(), body.month)
        return outcomes.import_outcomes(app_store(), app_schema(), user, parsed, raw, body.source, "json", None, idem)

    return idempotent(user, (raw,), run)


@operation(
    bp,
    "GET",
    "/api/v1/outcomes",
    "Every results import, newest first, with who imported it and the months it is in force for",
    response=c.OutcomesImports,
    errors=(403,),
    gate=finance_gate("reads the results imports"),
)
def list_outcomes() -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify({"imports": outcomes.imports_json(session, app_schema().calendar.year)})
