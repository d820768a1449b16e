"""The web edge of the service's errors: domain errors as RFC 9457 problem details.

The domain raises `sync_service.platform.errors`; one handler here turns any of them into
`application/problem+json` with the status its class means (`STATUSES`) and the validation
issues when there are some. No stack trace ever reaches a response.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from sync_service.platform.errors import (
    Busy,
    ServiceError,
)

PROBLEM_JSON = "application/problem+json"


def status_of(error: ServiceError) -> int:
    """The HTTP status that says what `error` means (its class carries it)."""
    return error.status


RETRY_AFTER_SECONDS = 5  # a write transaction lasts well under a second; a few seconds leave room for a queue
BUSY = "the database is busy with another change; try again in a few seconds"
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes (the low byte of an extended code)
# PostgreSQL: lock_not_available (lock_timeout), serialization_failure, deadlock_detected.
_POSTGRES_BUSY = frozenset({"55P03", "40001", "40P01"})


def is_busy(error: OperationalError) -> bool:
    """True when the database refused because another transaction holds what this one needs (worth a retry)."""
    orig = error.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is not None:
        return state in _POSTGRES_BUSY
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message or "busy" in message


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        extra = dict(error.extra)
        if error.issues is not None:
            extra["issues"] = error.issues
        status = status_of(error)
        response = problem(status, error.title, error.detail, **extra)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="plansheet"'
        if isinstance(error, Busy):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(OperationalError)
    def _database_error(error: OperationalError) -> Response:
        """Locked or busy beyond the wait allowed, on any route: 503 with Retry-After; anything else is a 500."""
        if is_busy(error):
            app.logger.warning("database busy: %s", error.orig)
            return _service_error(Busy(BUSY))
        return _unexpected(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        detail = "the request is larger than this service accepts" if error.code == 413 else (error.description or "")
        return problem(error.code or 500, error.name, detail)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unexpected error")
        return problem(500, "Internal error", "something went wrong on the server; it has been logged")
