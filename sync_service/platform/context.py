"""The one accessor for what the app holds: its store, its plan schema and the request's user.

The app factory puts the store and the schema in `app.extensions` under these keys; every layer
reads them from here, never from the API module.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g

from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import Store, User

STORE = "plansheet.store"  # app.extensions keys, set by the app factory
SCHEMA = "plansheet.schema"


def store(app: Flask | Any | None = None) -> Store:
    """The app's store (the current app's without `app`)."""
    return (app or current_app).extensions[STORE]


def schema(app: Flask | Any | None = None) -> PlanSchema:
    """The app's plan schema (the current app's without `app`)."""
    return (app or current_app).extensions[SCHEMA]


def signed_in() -> User | None:
    """The user the request was authenticated as (a bearer token or a dashboard session), or None yet."""
    return g.get("user")
