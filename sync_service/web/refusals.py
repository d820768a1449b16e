"""How a dashboard page shows the domain's refusal: flashed above the page a form returns to, or as an HTTP error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import abort, flash

from sync_service.platform.errors import ServiceError


@contextmanager
def flashed_refusal(*, with_issues: bool = False) -> Iterator[None]:
    """A form action: a refusal is flashed as an error (each issue's field and message too, when asked).

    The action's own redirect follows either way, so the page it returns to shows what went wrong.
    """
    try:
        yield
    except ServiceError as exc:
        issues = "".join(f" {i['at']}: {i['message']}." for i in exc.issues or []) if with_issues else ""
        flash(exc.detail + issues, "error")


@contextmanager
def refused_as_http(status: int | None = None) -> Iterator[None]:
    """A page or download: a refusal is the HTTP error its class means (or `status`), with its detail."""
    try:
        yield
    except ServiceError as exc:
        abort(status or exc.status, exc.detail)
