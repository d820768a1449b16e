"""The OpenAPI 3.1 description of API v1, generated from the routes' declared contracts (`sync_service.api.contracts`).

Nothing here is written by hand per route: each `@operation` gives its path, models, media
types and errors, and the JSON Schemas come from the pydantic models that also validate the
requests. A test keeps the document and the app's routes in step.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sync_service.api.contracts import OPERATIONS, Operation

REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "issues": {"type": "array", "items": {"type": "object"}},
    },
}
ERROR_TEXT = {
    400: "the request is malformed or out of bounds (the issues name each field)",
    401: "no valid API token",
    403: "the caller's role or teams do not allow it",
    404: "no such thing",
    409: "the state it meets refuses it (a plan approved since, a decision taken)",
    413: "the request is larger than the limits",
    422: "the plan or file is not valid (the issues name each cell)",
    502: "Google failed",
    503: "not configured here, or the database is busy (see Retry-After)",
}
ALWAYS = (400, 413)  # any request may be malformed or too large


def document() -> dict[str, Any]:
    models = _models()
    pairs = [(m, "validation") for m in models["in"]] + [(m, "serialization") for m in models["out"]]
    refs, schemas = models_json_schema(pairs, ref_template=REF) if pairs else ({}, {})
    components = {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        "schemas": {**schemas.get("$defs", {}), "Problem": PROBLEM},
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plansheet sync service",
            "version": "1",
            "description": "Marketing plans, approvals and the master budget. Errors are RFC 9457 problem details.",
        },
        "security": [{"token": []}],
        "components": components,
        "paths": paths,
    }


def _models() -> dict[str, list[type[BaseModel]]]:
    inputs, outputs = [], []
    for op in OPERATIONS:
        inputs += [m for m in (op.query, op.body, op.form) if m is not None and m not in inputs]
        if op.response is not None and op.response not in outputs:
            outputs.append(op.response)
    return {"in": inputs, "out": outputs}


def _ref(refs: dict[Any, Any], model: type[BaseModel], mode: str) -> dict[str, Any]:
    return refs[(model, mode)]


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.name}_{op.method.lower()}"}
    if not op.auth:
        out["security"] = []
    else:
        out["x-token-scopes"] = list(op.scopes)
    params = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(kind)}
        for name, kind in op.path_params.items()
    ]
    if op.query is not None:
        for name, prop in _properties(op.query, refs).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    params.append(
        {
            "name": "year",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": "^(FY|fy)?[0-9]{4}$"},
            "description": "the fiscal year the request is about (2028 or FY2028); default: the year the "
            "organisation file runs. A year the file does not describe answers 404",
        }
    )
    if op.idempotent_key:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "a retry with the same key gets the first answer and creates nothing new",
            }
        )
    if op.accepted is not None:
        params.append(
            {
                "name": "Prefer",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "respond-async: run it as a background job and answer 202 with the job at once",
            }
        )
    if params:
        out["parameters"] = params
    content: dict[str, Any] = {}
    if op.body is not None:
        content["application/json"] = {"schema": _ref(refs, op.body, "validation")}
    if op.form is not None:
        schema = _ref(refs, op.form, "validation")
        content["multipart/form-data"] = {
            "schema": {
                "allOf": [
                    schema,
                    {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    },
                ]
            }
        }
    for media in op.raw:
        content[media] = {"schema": {"type": "string", "format": "binary"}}
    if content:
        out["requestBody"] = {"required": op.body_required or bool(op.raw), "content": content}
    responses: dict[str, Any] = {}
    if op.response is not None:
        body = {"schema": _ref(refs, op.response, "serialization")}
        responses[str(op.status)] = {"description": "success", "content": {op.produces: body}}
    else:
        responses[str(op.status)] = {
            "description": "success",
            "content": {op.produces: {"schema": {"type": "string", "format": "binary"}}},
        }
    if op.accepted is not None:
        responses["202"] = {
            "description": "accepted: a background job (Prefer: respond-async); follow it at its Location",
            "content": {"application/json": {"schema": _ref(refs, op.accepted, "serialization")}},
        }
    errors = sorted({*op.errors, *ALWAYS, *((401,) if op.auth else ())})
    for code in errors:
        responses[str(code)] = {
            "description": ERROR_TEXT[code],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    out["responses"] = responses
    return out


def _path_schema(kind: str) -> dict[str, Any]:
    if kind == "integer":
        return {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    return {"type": "string", "minLength": 1, "maxLength": 200}


def _properties(model: type[BaseModel], refs: dict[Any, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    return schema.get("properties", {})
