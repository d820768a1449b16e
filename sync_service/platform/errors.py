"""The service's domain errors: what went wrong, in the user's words, with the issues found.

The workflow, the read model and the imports raise these; they know nothing of HTTP. The web
edge (`sync_service.problems`) maps each class to its status, and the command line
(`sync_service.cli`) maps each class to its exit code.
"""

from __future__ import annotations

from typing import Any

from sheet_templates.errors import PlansheetError


class ServiceError(PlansheetError):
    """A request the service refuses: `detail` says why, `issues` lists each problem (cell, rule, message)."""

    title = "The request cannot be done"

    def __init__(self, detail: str, *, issues: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues
        self.extra = extra


class Unauthorized(ServiceError):
    title = "Authentication required"


class Forbidden(ServiceError):
    title = "Not allowed"


class NotFound(ServiceError):
    title = "Not found"


class Conflict(ServiceError):
    """The request is fine, but the state it meets refuses it (a plan approved since, a decision taken)."""

    title = "Conflict"


class TooLarge(ServiceError):
    title = "Request too large"


class Unprocessable(ServiceError):
    """The plan or file is readable but not valid: every issue is listed, nothing was stored."""

    title = "The plan is not valid"


class Busy(ServiceError):
    """The database is busy with another change beyond the wait allowed; the same request can simply be sent again."""

    title = "Busy"


class NotReady(ServiceError):
    """The process runs but cannot serve yet (database unreachable or behind the newest schema, Redis down)."""

    title = "Not ready"


class NotConfigured(ServiceError):
    """A part of the service the request needs is not set up (for example Google Sheets)."""

    title = "Not configured"


class UpstreamFailed(ServiceError):
    """A service Plansheet depends on (Google) failed or could not be reached."""

    title = "A service Plansheet uses failed"
