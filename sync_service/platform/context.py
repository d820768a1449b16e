"""The one accessor for what the app holds: its store and its plan schema.

The app factory puts the store and the schema in `app.extensions` under these keys; every layer
reads them from here (the API, the dashboard and the jobs alike). A request names the fiscal year
it is about with `?year=` (default: the year the organisation file runs); the schema is that
year's, so every figure, list and check it reaches is that year's.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, has_request_context, request

from sheet_templates.calendar import fiscal_year
from sheet_templates.errors import ConfigError
from sheet_templates.schema import PlanSchema
from sync_service.platform.errors import NotFound, ServiceError
from sync_service.platform.storage import Store

STORE = "plansheet.store"  # app.extensions keys, set by the app factory
SCHEMA = "plansheet.schema"


def store(app: Flask | Any | None = None) -> Store:
    """The app's store (the current app's without `app`)."""
    return (app or current_app).extensions[STORE]


def schema(app: Flask | Any | None = None) -> PlanSchema:
    """The plan schema of the request's fiscal year (`?year=`), else the app's (the current app's without `app`)."""
    base = (app or current_app).extensions[SCHEMA]
    if app is None and has_request_context() and "year" in request.args:
        return year_schema(base, request.args["year"])
    return base


def year_schema(base: PlanSchema, given: Any) -> PlanSchema:
    """The schema of fiscal year `given` (2028 or FY2028): 400 when it is not a year, 404 when not described."""
    try:
        year = fiscal_year(given)
    except ValueError as exc:
        raise ServiceError(f"year: {exc}") from None
    if year is None:
        raise ServiceError("year: empty; write the fiscal year as 2028 or FY2028")
    try:
        return base.for_year(year)
    except ConfigError as exc:
        raise NotFound(f"year: {exc}") from None
