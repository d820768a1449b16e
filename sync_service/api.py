"""API v1 (JSON): views parse the request, call the workflow, and serialise its answer."""

from __future__ import annotations

import datetime as dt
import io
import mimetypes
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from werkzeug.security import safe_join

from sheet_templates.schema import PlanSchema
from sync_service import actuals, auth, functions_api, openapi, reports, sheets_sync, workflow
from sync_service import allocations as allocation_rules
from sync_service import master as master_model
from sync_service import periods as period_locks
from sync_service.auth import user_for_token
from sync_service.errors import Conflict, Forbidden, NotFound, ServiceError, TooLarge, Unauthorized, Unprocessable
from sync_service.idempotency import Idempotency, replay
from sync_service.storage import Role, Store, Team, User

bp = Blueprint("api", __name__)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STORE = "plansheet.store"  # app.extensions keys, set by the app factory
SCHEMA = "plansheet.schema"


def _store() -> Store:
    return current_app.extensions[STORE]


def _schema() -> PlanSchema:
    return current_app.extensions[SCHEMA]


def follow_ups() -> dict[str, workflow.FollowUp]:
    """What runs after every decision, from the configuration as it is now (the dashboard asks here too)."""
    return sheets_sync.follow_ups_for(_store(), _schema(), current_app.config)


def _master(user: User) -> master_model.Master:
    """The master read model as `user` may see it."""
    return master_model.load(_store(), _schema(), user)


def current_user() -> User:
    """The user of the request's bearer token; 401 without a valid one."""
    if "user" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        with _store().reading() as session:
            user = user_for_token(session, token.strip())
            if user is None:
                raise Unauthorized("the API token is not valid (unknown, revoked or mistyped)")
            user.teams  # noqa: B018 - load the teams while the session is open
            g.user = user
    return g.user


@bp.before_app_request
def _refuse_oversized_bodies() -> None:
    """Refuse a body over the limit from its Content-Length, before any of it is read or spooled to disk."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request is {request.content_length:,} bytes; this service accepts up to {limit:,}")


@bp.get("/api/v1/openapi.json")
def openapi_document() -> ResponseReturnValue:
    return jsonify(openapi.document())


@bp.get("/health")
def health() -> ResponseReturnValue:
    with _store().reading() as session:
        session.execute(text("SELECT 1"))
    return jsonify({"status": "ok", "database": "ok"})


def _idempotent(
    user: User, fingerprint: tuple[bytes | str, ...], run: Callable[[Idempotency | None], dict[str, Any]], status: int
) -> ResponseReturnValue:
    """Run `run` once per Idempotency-Key: a retry gets the stored first answer, marked as replayed."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        try:
            return jsonify(run(None)), status
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
            return jsonify(run(idem)), status
        except IntegrityError:  # a concurrent request with the same key won the race: replay its answer
            continue
        except ServiceError:  # e.g. "already approved" by this very request's first try, committed meanwhile
            replayed = replay(_store(), user, idem)
            if replayed is None:
                raise
            continue
    raise ServiceError("the request could not be completed; retry it with the same Idempotency-Key")


@bp.post("/api/v1/submissions")
def create_submission() -> ResponseReturnValue:
    user = current_user()
    incoming = _incoming()
    fingerprint = (incoming.team, incoming.source, incoming.raw)
    return _idempotent(
        user,
        fingerprint,
        lambda idem: workflow.submit(_store(), _schema(), user, incoming, idem, over_allocation=_policy()),
        201,
    )


def _policy() -> str:
    return current_app.config["OVER_ALLOCATION"]


@bp.get("/api/v1/submissions")
def list_submissions() -> ResponseReturnValue:
    user = current_user()
    return jsonify({"submissions": workflow.list_submissions(_store(), user, request.args.get("team"))})


@bp.get("/api/v1/submissions/<int:submission_id>")
def get_submission(submission_id: int) -> ResponseReturnValue:
    return jsonify(workflow.get_submission(_store(), current_user(), submission_id))


@bp.post("/api/v1/submissions/<int:submission_id>/<any(approve, reject):action>")
def decide(submission_id: int, action: str) -> ResponseReturnValue:
    user = current_user()
    auth.require_finance(user, "approves or rejects plans")  # decided before the body is read
    body = request.get_json(silent=True) or {}
    comment = body.get("comment", "") if isinstance(body, dict) else ""
    if not isinstance(comment, str):
        raise ServiceError("'comment' must be text")
    verdict = "approved" if action == "approve" else "rejected"
    return _idempotent(
        user,
        (str(submission_id), verdict, comment),
        lambda idem: workflow.decide(
            _store(),
            _schema(),
            user,
            submission_id,
            verdict,
            comment,
            idem,
            over_allocation=_policy(),
            follow_ups=follow_ups(),
        ),
        200,
    )


@bp.get("/api/v1/master")
def master() -> ResponseReturnValue:
    """The current master as JSON, or with ?format=xlsx as the master workbook (?as_of= for what is closed)."""
    user = current_user()
    form = request.args.get("format", "json")
    if form == "json":
        return jsonify(reports.master_json(_master(user)))
    if form != "xlsx":
        raise ServiceError("format must be json or xlsx")
    as_of = _date_arg("as_of")
    with tempfile.TemporaryDirectory() as folder:
        path = reports.master_workbook(_master(user), Path(folder) / "master.xlsx", as_of)
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name="master.xlsx")


def _date_arg(name: str) -> dt.date:
    text = request.args.get(name)
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ServiceError(f"{name} {text!r} is not a date; use YYYY-MM-DD") from None


@bp.get("/api/v1/master/versions")
def master_versions() -> ResponseReturnValue:
    return jsonify({"versions": workflow.master_versions(_store(), current_user())})


@bp.get("/api/v1/master/versions/<int:old>/diff/<int:new>")
def master_diff(old: int, new: int) -> ResponseReturnValue:
    return jsonify(workflow.master_diff(_store(), current_user(), old, new))


@bp.get("/api/v1/audit")
def audit_log() -> ResponseReturnValue:
    user = current_user()
    limit = request.args.get("limit", "200")
    if not limit.isdigit() or not 1 <= int(limit) <= 5000:
        raise ServiceError("limit must be a whole number from 1 to 5000")
    return jsonify({"events": workflow.audit(_store(), user, int(limit))})


@bp.get("/api/v1/templates/<team>.xlsx")
def team_template(team: str) -> ResponseReturnValue:
    user = current_user()
    with tempfile.TemporaryDirectory() as folder:
        path = workflow.team_template(_store(), _schema(), user, team, Path(folder) / f"plan-{team}.xlsx")
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=f"plan-{team}.xlsx")


@bp.get("/api/v1/rollup")
def rollup() -> ResponseReturnValue:
    args = request.args
    return jsonify(
        reports.rollup_json(_master(current_user()), args.get("by"), args.get("period"), args.get("measure"))
    )


@bp.get("/api/v1/variance")
def variance() -> ResponseReturnValue:
    args = request.args
    return jsonify(reports.variance_json(_master(current_user()), args.get("by"), args.get("as_of")))


@bp.get("/api/v1/allocations")
def allocations() -> ResponseReturnValue:
    return jsonify(reports.allocations_json(_master(current_user())))


@bp.put("/api/v1/allocations")
def put_allocations() -> ResponseReturnValue:
    user = current_user()
    body = request.get_json(silent=True)
    allocation_rules.put_allocations(_store(), _schema(), user, body)
    return jsonify(reports.allocations_json(_master(user)))


@bp.post("/api/v1/actuals")
def import_actuals() -> ResponseReturnValue:
    """The finance system's export as a multipart upload (field `file`) or as the raw CSV/xlsx body."""
    user = current_user()
    auth.require_finance(user, "imports actuals")  # decided before the upload is read
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ServiceError("upload the export in the multipart field 'file'")
        raw, filename = upload.read(), upload.filename
    else:
        raw, filename = request.get_data(), request.args.get("filename")
    if not raw:
        raise ServiceError("the export is empty; upload a CSV or xlsx file")
    return _idempotent(
        user,
        (raw,),
        lambda idem: actuals.import_actuals(_store(), _schema(), user, raw, filename, idem),
        201,
    )


@bp.get("/api/v1/periods")
def periods() -> ResponseReturnValue:
    current_user()
    return jsonify(period_locks.periods_view(_store(), _schema()))


@bp.post("/api/v1/periods/<any(lock, unlock):action>")
def lock_periods(action: str) -> ResponseReturnValue:
    user = current_user()
    body = request.get_json(silent=True)
    return jsonify(period_locks.set_locks(_store(), _schema(), user, body, lock=action == "lock"))


@bp.get("/api/v1/gsheets/teams")
def gsheets_teams() -> ResponseReturnValue:
    return jsonify({"sheets": sheets_sync.list_sheets(_store(), current_user())})


@bp.post("/api/v1/gsheets/teams/<team>")
def gsheets_create(team: str) -> ResponseReturnValue:
    """Create the team's Google plan sheet (finance): {"editors": [emails], "replace": false}."""
    user = current_user()
    body = request.get_json(silent=True) or {}
    editors = body.get("editors", []) if isinstance(body, dict) else None
    if not isinstance(editors, list) or not all(isinstance(e, str) and "@" in e for e in editors):
        raise ServiceError("'editors' must be a list of e-mail addresses")
    replace = bool(body.get("replace")) if isinstance(body, dict) else False
    result = sheets_sync.create_for_team(_store(), _schema(), user, team, current_app.config, editors, replace=replace)
    return jsonify(result), 201


@bp.post("/api/v1/gsheets/teams/<team>/pull")
def gsheets_pull(team: str) -> ResponseReturnValue:
    user = current_user()
    return _idempotent(
        user,
        ("gsheets-pull", team),
        lambda idem: sheets_sync.pull_for_team(_store(), _schema(), user, team, current_app.config, _policy(), idem),
        201,
    )


@bp.post("/api/v1/gsheets/master/push")
def gsheets_push() -> ResponseReturnValue:
    user = current_user()
    body = request.get_json(silent=True) or {}
    target = body.get("spreadsheet_id") if isinstance(body, dict) else None
    return jsonify(sheets_sync.push_master(_store(), _schema(), user, current_app.config, target))


@bp.get("/api/v1/functions")
def functions_metadata() -> ResponseReturnValue:
    """The catalogue as Office.js custom-functions metadata (functions.json)."""
    current_user()
    return jsonify(functions_api.CATALOG.metadata())


@bp.post("/api/v1/functions:batch")
def functions_batch() -> ResponseReturnValue:
    """Many calls in one request, as Excel batches custom functions: {"calls": [{"name", "args"}]}."""
    user = current_user()
    body = request.get_json(silent=True)
    calls = body.get("calls") if isinstance(body, dict) else None
    if not isinstance(calls, list):
        raise ServiceError('send {"calls": [{"name": "PS_PLANNED", "args": [[["EMEA"]], [["Q1"]]]}, ...]}')
    if len(calls) > functions_api.MAX_CALLS:
        raise ServiceError(f"at most {functions_api.MAX_CALLS:,} calls per request")
    return jsonify({"results": functions_api.evaluate(_store(), _schema(), user, calls)})


@bp.post("/api/v1/functions/<name>")
def function_call(name: str) -> ResponseReturnValue:
    """One call: {"args": [2-D array, ...]} -> {"result": 2-D array} or {"error": {"code", "message"}}."""
    user = current_user()
    body = request.get_json(silent=True)
    args = body.get("args", []) if isinstance(body, dict) else None
    if not isinstance(args, list):
        raise ServiceError('send {"args": [[["EMEA"]], [["Q1"]]]}: each argument a 2-D array')
    [answer] = functions_api.evaluate(_store(), _schema(), user, [{"name": name, "args": args}])
    return jsonify(answer)


ADDIN_ROOT = Path(__file__).resolve().parents[1] / "addin"
ADDIN_SUFFIXES = {".js", ".html", ".css", ".png", ".gs", ".json"}
ADDIN_FILES = {"officejs": ADDIN_ROOT / "officejs", "apps-script": ADDIN_ROOT / "apps_script"}


@bp.get("/addin/functions.json")
def addin_functions_json() -> ResponseReturnValue:
    """The Office.js custom-functions metadata, generated from the catalogue (never a hand-edited file)."""
    return jsonify(functions_api.CATALOG.metadata())


@bp.get("/addin/manifest.xml")
def addin_manifest() -> ResponseReturnValue:
    """The Office add-in manifest, pointing at this service (PLANSHEET_PUBLIC_URL, else the address asked)."""
    base = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
    text = (ADDIN_FILES["officejs"] / "manifest.xml").read_text(encoding="utf-8").replace("{{BASE_URL}}", base)
    return current_app.response_class(text, mimetype="application/xml")


@bp.get("/addin/<any(officejs, 'apps-script'):action>/<path:name>")
def addin_file(action: str, name: str) -> ResponseReturnValue:
    """The add-in's static files (Office.js shims and task pane; the Apps Script project), for sideloading.

    Only what a host loads is served: not the tests or the npm files beside them.
    """
    if name.startswith("test/") or name.startswith("package") or Path(name).suffix not in ADDIN_SUFFIXES:
        raise NotFound(f"there is no add-in file {name}")
    path = safe_join(str(ADDIN_FILES[action]), name)
    if path is None or not Path(path).is_file():
        raise NotFound(f"there is no add-in file {name}")
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = send_file(io.BytesIO(Path(path).read_bytes()), mimetype=mimetype, max_age=300)
    return response


def _require_admin(user: User) -> None:
    if user.role != Role.ADMIN:
        raise Forbidden("only admins manage users and tokens")


@bp.get("/api/v1/users")
def users() -> ResponseReturnValue:
    _require_admin(current_user())
    with _store().reading() as session:
        return jsonify({"users": auth.users_view(session)})


@bp.post("/api/v1/tokens")
def create_token() -> ResponseReturnValue:
    """A new token (admin): {"name", "role", "teams"}; the token is in this answer only."""
    user = current_user()
    _require_admin(user)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
        raise ServiceError('send {"name": "maria@example.com", "role": "marketer", "teams": ["EMEA-ENTERPRISE"]}')
    role, teams = body.get("role"), body.get("teams", [])
    if role not in [r.value for r in Role]:
        raise ServiceError(f"role must be one of {', '.join(r.value for r in Role)}")
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        raise ServiceError("'teams' must be a list of team ids")
    name = body["name"].strip()[:120]
    try:
        with _store().transaction() as session:
            token = auth.create_token(session, name, role, teams, actor=user.id)
    except LookupError as exc:
        with _store().reading() as session:
            known = ", ".join(session.scalars(select(Team.id).order_by(Team.id)))
        raise Unprocessable(f"{exc.args[0]}; the teams are {known}") from None
    return jsonify({"name": name, "role": role, "teams": teams, "token": token}), 201


@bp.post("/api/v1/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> ResponseReturnValue:
    user = current_user()
    _require_admin(user)
    with _store().transaction() as session:
        row = auth.revoke_token(session, token_id, user.id)
        if row is None:
            raise NotFound(f"there is no token {token_id}")
        return jsonify({"id": row.id, "revoked_at": row.revoked_at.isoformat()})


def _incoming() -> workflow.Incoming:
    """A plan from a multipart upload (field `file`, plus `team`) or a JSON body {team, lines | rows}."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        team = request.form.get("team", "").strip()
        if upload is None:
            raise ServiceError("upload the plan in the multipart field 'file'")
        if not team:
            raise ServiceError("say which team the plan is for in the form field 'team'")
        base = _base(request.form.get("based_on_submission"), request.form.get("based_on_version"))
        return workflow.Incoming(team, "xlsx", upload.read(), filename=upload.filename, base=base)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ServiceError("send an xlsx file (multipart field 'file') or a JSON object with 'team' and 'lines'")
    team = body.get("team")
    if not isinstance(team, str) or not team.strip():
        raise ServiceError("the JSON needs 'team', the id of the team the plan is for")
    based_on = body.get("based_on")
    if based_on is not None and not isinstance(based_on, dict):
        raise ServiceError('\'based_on\' must be {"submission": N} (or null for none) or {"master_version": N}')
    base = None
    if isinstance(based_on, dict):
        if "master_version" in based_on:
            base = _base(None, based_on["master_version"])
        elif "submission" in based_on:
            base = _base(based_on["submission"], None) or {"submission": None}
        else:
            raise ServiceError('\'based_on\' must be {"submission": N} (or null for none) or {"master_version": N}')
    return workflow.Incoming(team.strip(), "json", request.get_data(), grid=_grid(body), base=base)


def _base(submission: Any, version: Any) -> dict[str, int | None] | None:
    """The plan's base from form fields or JSON: a submission number (0 or "none": the team had none) or a version."""
    for name, value in (("submission", submission), ("master_version", version)):
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.strip().lower() in ("none", "0"):
            value = 0
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ServiceError(f"based_on {name} must be a whole number of zero or more, not {value!r}")
        return {name: value or None} if name == "submission" else {name: value}
    return None


def _grid(body: dict[str, Any]) -> list[list[Any]]:
    """JSON lines ({"lines": [{column: value}]}) or rows ({"rows": [[header...], [...]]}) as a grid."""
    schema = _schema()
    if isinstance(body.get("rows"), list) and all(isinstance(r, list) for r in body["rows"]):
        for n, row in enumerate(body["rows"]):
            for j, value in enumerate(row):
                if value is not None and not isinstance(value, str | int | float | bool):
                    raise ServiceError(f"rows[{n}][{j}] must be text, a number or null, not {type(value).__name__}")
        return body["rows"]
    lines = body.get("lines")
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise ServiceError("'lines' must be a list of objects keyed by column name (see /api/v1/schema)")
    names = [c.name for c in schema.input_columns]
    for n, line in enumerate(lines):
        for key, value in line.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                raise ServiceError(f"lines[{n}].{key} must be text, a number or null, not {type(value).__name__}")
    unknown = sorted({k for line in lines for k in line} - set(names))
    if unknown:
        raise ServiceError(f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(names)}")
    return [names, *([line.get(n) for n in names] for line in lines)]
