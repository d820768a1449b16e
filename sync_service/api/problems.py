"""The web edge of the service's errors: domain errors as RFC 9457 problem details, or a page for a browser.

The domain raises `sync_service.platform.errors`; one handler here turns any of them into
`application/problem+json` with the status its class carries and the validation
issues when there are some. No stack trace ever reaches a response.

The same handlers answer a browser with a page instead (`wants_page`): a person who mistypes an
address, or opens a page the server fails on, reads what happened in words, not JSON. The API's
paths, the health probes and every client that prefers JSON keep problem details.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Request, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from sync_service.platform.errors import (
    Busy,
    ServiceError,
)

PROBLEM_JSON = "application/problem+json"
# Where every answer is for a program, whatever it accepts: the API, the add-ins' files, the probes.
PROGRAM_PATHS = ("/api/", "/addin/")
PROBES = ("/health", "/ready")
HTML = ("text/html", "application/xhtml+xml")

# Renders an error as a page: (status, what the error says to a person, or None) -> the answer.
PageRenderer = Callable[[int, str | None], Response]


def wants_page(req: Request) -> bool:
    """True for a browser asking for a page: HTML named and preferred to JSON, on a path that is not the API's.

    A client that accepts anything (curl's `*/*`, no Accept at all) or prefers JSON gets problem details.
    """
    if req.path.startswith(PROGRAM_PATHS) or req.path in PROBES:
        return False
    accept = req.accept_mimetypes
    if not any(kind in HTML and quality > 0 for kind, quality in accept):
        return False
    return accept.best_match([*HTML, PROBLEM_JSON, "application/json"]) in HTML


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


def _kept_headers(error: HTTPException) -> dict[str, str]:
    """What an HTTP error says besides its body (Allow of a 405, Retry-After, WWW-Authenticate)."""
    return {name: value for name, value in error.get_headers() if name.lower() != "content-type"}


def _said(error: HTTPException) -> str | None:
    """An HTTP error's own words for a person: its description when a view gave one, never werkzeug's default."""
    if (error.code or 500) == 500 or error.description == type(error).description:
        return None
    return error.description


def init_app(app: Flask, page: PageRenderer | None = None) -> None:
    """Answer every error as problem details, or, when `page` is given, as that page for a browser (`wants_page`).

    The page shows what the error says to people (a domain error's detail, a view's own words), never
    an unexpected error's: that one is logged, and the page says only that something went wrong.
    """

    def answer(
        status: int, title: str, detail: str, said: str | None, headers: Mapping[str, str], **extra: Any
    ) -> Response:
        if page is not None and wants_page(request):
            response = page(status, said)
        else:
            response = problem(status, title, detail, **extra)
        response.headers.update(headers)
        return response

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        extra = dict(error.extra)
        if error.issues is not None:
            extra["issues"] = error.issues
        status = status_of(error)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="plansheet"'
        if isinstance(error, Busy):
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer(status, error.title, error.detail, error.detail, headers, **extra)

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
        return answer(error.code or 500, error.name, detail, _said(error), _kept_headers(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unexpected error")
        return answer(500, "Internal error", "something went wrong on the server; it has been logged", None, {})
