"""The one accessor for what the app holds: its store and its plan schema.

The app factory puts the store and the schema in `app.extensions` under these keys; every layer
reads them from here (the API, the dashboard and the jobs alike).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import Store

STORE = "plansheet.store"  # app.extensions keys, set by the app factory
SCHEMA = "plansheet.schema"


def store(app: Flask | Any | None = None) -> Store:
    """The app's store (the current app's without `app`)."""
    return (app or current_app).extensions[STORE]


def schema(app: Flask | Any | None = None) -> PlanSchema:
    """The app's plan schema (the current app's without `app`)."""
    return (app or current_app).extensions[SCHEMA]
