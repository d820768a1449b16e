"""The spreadsheet add-ins' routes: the live functions (metadata, batch, one call) and the add-in's own files."""

from __future__ import annotations

import io
import mimetypes
import posixpath
import re
from pathlib import Path

from flask import current_app, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import ADDIN_SCOPES, bp
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.master import functions as functions_api
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import (
    NotFound,
)


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
    answers = functions_api.evaluate(app_store(), app_schema(), current_user(), calls, fingerprint=request.get_data())
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
    [answer] = functions_api.evaluate(app_store(), app_schema(), current_user(), [{"name": name, "args": body.args}])
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
