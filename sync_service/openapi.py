"""The OpenAPI 3.1 description of API v1, served at /api/v1/openapi.json (a test keeps it in step with the routes)."""

from __future__ import annotations

from typing import Any

PROBLEM = {"$ref": "#/components/responses/Problem"}


def _op(summary: str, ok: str, *errors: int, body: dict[str, Any] | None = None, params: list | None = None) -> dict:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: {"description": "success", "content": {"application/json": {}}}}
        | {str(code): PROBLEM for code in errors},
    }
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


SUBMISSION_ID = [{"name": "submission_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "a retry with the same key gets the first answer and creates nothing new",
}
COMMENT = {
    "content": {"application/json": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}}
}


TEAM = {"name": "team", "in": "path", "required": True, "schema": {"type": "string"}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": description}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Plansheet sync service", "version": "1"},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details; invalid plans list every issue in `issues`",
                    "content": {
                        "application/problem+json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "type": {"type": "string"},
                                    "title": {"type": "string"},
                                    "status": {"type": "integer"},
                                    "detail": {"type": "string"},
                                    "issues": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        }
                    },
                }
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/health": {"get": {**_op("Service and database health", "200"), "security": []}},
            "/api/v1/openapi.json": {"get": {**_op("This document", "200"), "security": []}},
            "/api/v1/submissions": {
                "post": _op(
                    "Submit a plan: an xlsx upload (multipart: file, team, based_on_submission | based_on_version) "
                    "or JSON {team, lines | rows, based_on: {submission | master_version}}",
                    "201",
                    400,
                    401,
                    403,
                    404,
                    409,
                    413,
                    422,
                    body={"content": {"multipart/form-data": {}, "application/json": {}}},
                    params=[IDEMPOTENCY],
                ),
                "get": _op(
                    "Submissions the caller may see (?team= to filter)",
                    "200",
                    401,
                    params=[{"name": "team", "in": "query", "required": False, "schema": {"type": "string"}}],
                ),
            },
            "/api/v1/submissions/{submission_id}": {
                "get": _op("One submission", "200", 401, 403, 404, params=SUBMISSION_ID)
            },
            **{
                f"/api/v1/submissions/{{submission_id}}/{action}": {
                    "post": _op(
                        summary, "200", 400, 401, 403, 404, 409, body=COMMENT, params=[*SUBMISSION_ID, IDEMPOTENCY]
                    )
                }
                for action, summary in (
                    ("approve", "Approve (finance): the plan becomes the team's part of a new master version"),
                    ("reject", "Reject (finance) with a comment"),
                )
            },
            "/api/v1/master": {
                "get": _op(
                    "The current master budget: each team's approved plan (JSON, or the master workbook)",
                    "200",
                    400,
                    401,
                    params=[
                        _query("format", "json (default) or xlsx"),
                        _query("as_of", "for xlsx: YYYY-MM-DD (default today), which fiscal months are closed"),
                    ],
                )
            },
            "/api/v1/master/versions": {"get": _op("Every master version, newest first", "200", 401)},
            "/api/v1/master/versions/{old}/diff/{new}": {
                "get": _op(
                    "Lines added, removed and changed between two master versions, by team",
                    "200",
                    401,
                    404,
                    params=[
                        {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
                        for n in ("old", "new")
                    ],
                )
            },
            "/api/v1/templates/{team}.xlsx": {
                "get": _op(
                    "The team's template, pre-filled with its current approved lines",
                    "200",
                    401,
                    403,
                    404,
                    params=[{"name": "team", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/api/v1/rollup": {
                "get": _op(
                    "Totals of the current master by any dimensions and period, with allocations where they apply",
                    "200",
                    400,
                    401,
                    params=[
                        _query("by", "comma-separated dimensions (default region), e.g. region,channel"),
                        _query("period", "month, quarter (default) or year"),
                        _query("measure", "planned (default), committed, actual or a KPI column"),
                    ],
                )
            },
            "/api/v1/variance": {
                "get": _op(
                    "Plan to date against actual spend, with the allocation and what remains of it",
                    "200",
                    400,
                    401,
                    params=[
                        _query("by", "comma-separated dimensions (default region)"),
                        _query("as_of", "YYYY-MM-DD (default today): which fiscal months are closed"),
                    ],
                )
            },
            "/api/v1/allocations": {
                "get": _op("The allocations in force (region x quarter x channel)", "200", 401),
                "put": _op(
                    "Replace the allocations (finance): {allocations: [{region, quarter, channel, amount}], comment}",
                    "200",
                    400,
                    401,
                    403,
                    422,
                    body={"content": {"application/json": {}}},
                ),
            },
            "/api/v1/actuals": {
                "post": _op(
                    "Import actual spend (finance): a CSV or xlsx export with Line ID or Campaign code and Amount",
                    "201",
                    400,
                    401,
                    403,
                    413,
                    422,
                    body={"content": {"multipart/form-data": {}, "text/csv": {}, XLSX: {}}},
                    params=[IDEMPOTENCY],
                )
            },
            "/api/v1/periods": {"get": _op("The fiscal months and which are locked", "200", 401)},
            **{
                f"/api/v1/periods/{action}": {
                    "post": _op(
                        f"{action.capitalize()} fiscal months (finance): {{months: [m01 | Q1 | 'Feb 2026']}} "
                        "or {through: m03}",
                        "200",
                        400,
                        401,
                        403,
                        body={"content": {"application/json": {}}},
                    )
                }
                for action in ("lock", "unlock")
            },
            "/api/v1/gsheets/teams": {"get": _op("The teams' registered Google plan sheets", "200", 401, 403)},
            "/api/v1/gsheets/teams/{team}": {
                "post": _op(
                    "Create the team's Google plan sheet from the schema and share it (finance): {editors, replace}",
                    "201",
                    400,
                    401,
                    403,
                    404,
                    409,
                    502,
                    503,
                    body={"content": {"application/json": {}}},
                    params=[TEAM],
                )
            },
            "/api/v1/gsheets/teams/{team}/pull": {
                "post": _op(
                    "Read the team's Google sheet and submit it, as an upload (marketer of the team, finance)",
                    "201",
                    401,
                    403,
                    404,
                    409,
                    422,
                    502,
                    503,
                    params=[TEAM, IDEMPOTENCY],
                )
            },
            "/api/v1/gsheets/master/push": {
                "post": _op(
                    "Write the master, rollup and variance to the finance master spreadsheet, atomically (finance)",
                    "200",
                    401,
                    403,
                    502,
                    503,
                    body={"content": {"application/json": {}}},
                )
            },
            "/api/v1/users": {"get": _op("Users, their roles, teams and tokens (admin)", "200", 401, 403)},
            "/api/v1/tokens": {
                "post": _op(
                    "Create a user (or reuse one) and a token for it (admin): {name, role, teams}",
                    "201",
                    400,
                    401,
                    403,
                    422,
                    body={"content": {"application/json": {}}},
                )
            },
            "/api/v1/tokens/{token_id}/revoke": {
                "post": _op(
                    "Revoke a token (admin)",
                    "200",
                    401,
                    403,
                    404,
                    params=[{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/api/v1/functions": {"get": _op("The spreadsheet functions, as Office.js metadata", "200", 401)},
            "/api/v1/functions:batch": {
                "post": _op(
                    "Evaluate many function calls at once: {calls: [{name, args: [2-D arrays]}]} -> {results}",
                    "200",
                    400,
                    401,
                    403,
                    body={"content": {"application/json": {}}},
                )
            },
            "/api/v1/functions/{name}": {
                "post": _op(
                    "Evaluate one function: {args: [2-D arrays]} -> {result: 2-D array} or {error: {code, message}}",
                    "200",
                    400,
                    401,
                    403,
                    body={"content": {"application/json": {}}},
                    params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/api/v1/audit": {
                "get": _op(
                    "The newest audit events (finance, admin)",
                    "200",
                    400,
                    401,
                    403,
                    params=[{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}}],
                )
            },
        },
    }
