"""What every API module shares: the blueprint, the store and schema, role gates, idempotent retries, job answers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from sync_service.access import auth
from sync_service.access.approvals import may_approve_something
from sync_service.api.caller import current_user
from sync_service.api.uploads import uploaded
from sync_service.integrations.google import sync as sheets_sync
from sync_service.master import model as master_model
from sync_service.platform import jobs, profiles
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store
from sync_service.platform.errors import (
    Conflict,
    Forbidden,
    ServiceError,
    TooLarge,
)
from sync_service.platform.idempotency import Idempotency, replay
from sync_service.platform.storage import Role, TokenScope, User

EXPORT_EMPTY = "the export is empty; upload a CSV or xlsx file"


bp = Blueprint("api", __name__)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def follow_ups() -> dict[str, Any]:
    """What runs after every decision, from the configuration as it is now (the dashboard asks here too)."""
    return sheets_sync.follow_ups_for(current_app)


def master_for(user: User) -> master_model.Master:
    """The master read model as `user` may see it."""
    return master_model.load(app_store(), app_schema(), user)


# What a read-only add-in token may call: the spreadsheet functions and the reads of the master.
ADDIN_SCOPES = (TokenScope.FULL.value, TokenScope.FUNCTIONS.value)


@bp.before_app_request
def _refuse_oversized_bodies() -> None:
    """Refuse a body over the limit from its Content-Length, before any of it is read or spooled to disk."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request is {request.content_length:,} bytes; this service accepts up to {limit:,}")


def finance_gate(what: str) -> Any:
    """A gate: 403 unless the caller is finance (decided before any input is read)."""
    return lambda: auth.require_finance(current_user(), what)


def planner_gate() -> None:
    """A gate: finance and marketers, who plan and move budget; admins manage users, not money."""
    if current_user().role == Role.ADMIN:
        raise Forbidden("admins manage users and tokens; finance and marketers read and move budgets")


def approver_gate() -> None:
    """A gate: finance, and the users an approval chain names (a region lead, a controller)."""
    if not may_approve_something(current_user()):
        raise Forbidden("only finance and the approvers an approval chain names approve or reject plans")


def admin_gate() -> None:
    if current_user().role != Role.ADMIN:
        raise Forbidden("only admins manage users and tokens")


def idempotent(
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
        replayed = replay(app_store(), user, idem)
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
            replayed = replay(app_store(), user, idem)
            if replayed is None:
                raise
            continue
    raise ServiceError("the request could not be completed; retry it with the same Idempotency-Key")


def over_allocation_policy() -> str:
    return current_app.config["OVER_ALLOCATION"]


def job_answer(user: User, job_id: str) -> ResponseReturnValue:
    """A job just queued: 202 with where to follow it, or 200 once finished when the client asked to wait."""
    seconds = preferred_wait()
    answer = jobs.wait(app_store(), user, job_id, seconds) if seconds else jobs.get(app_store(), user, job_id)
    status = 200 if answer["status"] in jobs.TERMINAL else 202
    headers = {"Location": f"/api/v1/jobs/{job_id}"}
    if seconds:
        headers["Preference-Applied"] = f"wait={seconds:g}"
    return jsonify(answer), status, headers


def prefers(token: str) -> bool:
    """Whether the request's RFC 7240 `Prefer` header names `token` (respond-async, say)."""
    return any(
        part.strip().partition("=")[0].strip().lower() == token for part in request.headers.get("Prefer", "").split(",")
    )


def preferred_wait() -> float:
    """The seconds of an RFC 7240 `Prefer: wait=N` header (0: none; at most jobs.WAIT_LIMIT)."""
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                seconds = math.nan
            if not math.isfinite(seconds):  # nan and inf would slip past the cap below
                raise ServiceError(f"Prefer: wait={value.strip()!r} is not a number of seconds; send, say, wait=10")
            return min(max(seconds, 0.0), jobs.WAIT_LIMIT)
    return 0.0


def submitted(result: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A submission's answer: 201 when it was stored, 200 when it is the team's approved plan unchanged."""
    return (200 if result.get("unchanged") else 201), result


def export_import(kind: str, query: Any, run: Callable[..., Any], status: int = 200) -> ResponseReturnValue:
    """An export (actual spend, POs, invoices) imported now by `run(user, raw, filename, idem, how)`, or by a job.

    `how` is how the export is read: the profile or preset the query names, else what its header shows.

    With `Prefer: respond-async` the job `kind` imports it; a retry with the same Idempotency-Key
    gets the first answer. `run` answers a body (sent with `status`) or (status, body).
    """
    user = current_user()
    raw, filename = uploaded(query.filename, "the export", EXPORT_EMPTY)
    how = profiles.how(app_store(), kind.split(".")[0], query.profile, query.preset)  # 404: no such profile
    if prefers("respond-async"):
        given = {"date_order": query.date_order} if query.date_order else {}
        return job_answer(user, jobs.enqueue(current_app, kind, given | how.args(), user, (raw, filename)))
    key = (raw, query.model_dump_json())
    return idempotent(user, key, lambda idem: run(user, raw, filename, idem, how), status)
