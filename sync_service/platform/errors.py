"""The service's domain errors: what went wrong, in the user's words, with the issues found.

The workflow, the read model and the imports raise these; they know nothing of HTTP. The web
edge (`sync_service.api.problems`) answers each with the status its class carries, and the command line
(`sync_service.cli`) maps each class to its exit code.
"""

from __future__ import annotations

from typing import Any

from addin.issues import rule_title
from sheet_templates.errors import PlansheetError
from sheet_templates.formatting import words


class ServiceError(PlansheetError):
    """A request the service refuses: `detail` says why, `issues` lists each problem (cell, rule, message)."""

    title = "The request cannot be done"
    status = 400  # what HTTP calls it, for the web edge and a job's record

    def __init__(self, detail: str, *, issues: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues
        self.extra = extra


class Unauthorized(ServiceError):
    title = "Authentication required"
    status = 401  # what HTTP calls it, for the web edge and a job's record


class Forbidden(ServiceError):
    title = "Not allowed"
    status = 403  # what HTTP calls it, for the web edge and a job's record


class NotFound(ServiceError):
    title = "Not found"
    status = 404  # what HTTP calls it, for the web edge and a job's record


class Conflict(ServiceError):
    """The request is fine, but the state it meets refuses it (a plan approved since, a decision taken)."""

    title = "Conflict"
    status = 409  # what HTTP calls it, for the web edge and a job's record


class TooLarge(ServiceError):
    title = "Request too large"
    status = 413  # what HTTP calls it, for the web edge and a job's record


class Unprocessable(ServiceError):
    """The plan or file is readable but not valid: every issue is listed, nothing was stored."""

    title = "The plan is not valid"
    status = 422  # what HTTP calls it, for the web edge and a job's record


class Busy(ServiceError):
    """The database is busy with another change beyond the wait allowed; the same request can simply be sent again."""

    title = "Busy"
    status = 503  # what HTTP calls it, for the web edge and a job's record


class NotReady(ServiceError):
    """The process runs but cannot serve yet (database unreachable or behind the newest schema, Redis down)."""

    title = "Not ready"
    status = 503  # what HTTP calls it, for the web edge and a job's record


class NotConfigured(ServiceError):
    """A part of the service the request needs is not set up (for example Google Sheets)."""

    title = "Not configured"
    status = 503  # what HTTP calls it, for the web edge and a job's record


class UpstreamFailed(ServiceError):
    """A service Plansheet depends on (Google) failed or could not be reached."""

    title = "A service Plansheet uses failed"
    status = 502  # what HTTP calls it, for the web edge and a job's record


# The rules the service checks beyond the reader's (`addin.issues.RULE_TITLES` names those), in words:
# what a page or an email shows where the API gives the rule's id.
SERVICE_RULE_TITLES: dict[str, str] = {
    "period.locked": "Month locked",
    "period.closed": "Month closed",
    "allocation.over": "Over the allocation",
    "allocations.drops_planned_cell": "Would drop a cell with plans under it",
    "template.identity": "Not this team's template",
    "line_id.duplicate": "Line ID used twice",
    "column.ambiguous": "Two columns answer one field",
    "scenario.team": "No team plans this line",
    "po.over_plan": "Purchase order over plan",
    "invoice.credit_beyond_invoiced": "Credit beyond what was invoiced",
    "actuals.amount": "Not an amount",
    "actuals.currency": "Currency not described",
    "actuals.month": "Not a month of the year",
    "actuals.too_long": "Text too long",
    "actuals.control_character": "Invisible control character",
    "outcomes.currency": "Currency not described",
    "subscription.address": "No email address",
    "subscription.mail_server": "No mail server",
    "pack.month": "No closed month",
}


def rule_words(rule: str) -> str:
    """A rule's id in words: the reader's rules by their titles, the service's from the table above, else its name."""
    title = rule_title(rule)
    if title != rule:
        return title
    return SERVICE_RULE_TITLES.get(rule) or words(rule)
