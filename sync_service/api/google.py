"""The Google Sheets routes: each team's sheet made, pulled and pushed, and the master pushed."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import bp, finance_gate, idempotent, job_answer, over_allocation_policy, submitted
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.integrations.google import sync as sheets_sync
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store


@operation(bp, "GET", "/api/v1/gsheets/teams", "The teams' Google plan sheets", response=c.Sheets, errors=(403,))
def gsheets_teams() -> ResponseReturnValue:
    return jsonify({"sheets": sheets_sync.list_sheets(app_store(), current_user(), app_schema().calendar.year)})


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
    gate=finance_gate("creates team plan sheets"),
)
def gsheets_create(team: str, body: c.SheetCreateBody) -> ResponseReturnValue:
    """Create the team's Google plan sheet (finance): {"editors": [emails], "replace": false}."""
    user = current_user()
    result = sheets_sync.create_for_team(
        app_store(), app_schema(), user, team, current_app.config, body.editors, replace=body.replace
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
    return idempotent(
        user,
        ("gsheets-pull", team),
        lambda idem: submitted(
            sheets_sync.pull_for_team(
                app_store(), app_schema(), user, team, current_app.config, over_allocation_policy(), idem
            )
        ),
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
    gate=finance_gate("pushes the master budget"),
)
def gsheets_push(body: c.PushBody) -> ResponseReturnValue:
    """A push job (202, its address in Location); `Prefer: wait=N` waits up to N seconds for it to finish."""
    user = current_user()
    return job_answer(user, sheets_sync.request_push(current_app, user, body.spreadsheet_id))
