"""API errors as RFC 9457 problem details: each error class carries its HTTP status.

Views raise; one handler turns any `ApiError` into `application/problem+json`, with the
validation issues when there are some. No stack trace ever reaches a response.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, issues: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues
        self.extra = extra


class Unauthorized(ApiError):
    status, title = 401, "Authentication required"


class Forbidden(ApiError):
    status, title = 403, "Not allowed"


class NotFound(ApiError):
    status, title = 404, "Not found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class TooLarge(ApiError):
    status, title = 413, "Request too large"


class Unprocessable(ApiError):
    status, title = 422, "The plan is not valid"


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        extra = dict(error.extra)
        if error.issues is not None:
            extra["issues"] = error.issues
        response = problem(error.status, error.title, error.detail, **extra)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="plansheet"'
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        detail = "the request is larger than this service accepts" if error.code == 413 else (error.description or "")
        return problem(error.code or 500, error.name, detail)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unexpected error")
        return problem(500, "Internal error", "something went wrong on the server; it has been logged")
