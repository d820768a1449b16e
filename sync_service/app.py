"""The Flask application factory: configuration, storage and the API blueprint.

Configuration comes from the defaults in `settings.py`, then the instance file
`plansheet.cfg`, then `PLANSHEET_*` environment variables, then the mapping passed in.
The app keeps no state between requests beyond its database, so any number of processes
on any number of machines can serve one PostgreSQL database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from sheet_templates import PlanSchema, build_schema, load_config
from sheet_templates.errors import ConfigError
from sync_service import api, problems, web
from sync_service.api import SCHEMA, STORE
from sync_service.settings import DEFAULTS
from sync_service.storage import Store
from sync_service.workflow import OVER_ALLOCATION_POLICIES


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("sync_service", instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("plansheet.cfg", silent=True)
    app.config.from_prefixed_env("PLANSHEET")
    if not app.config.get("DATABASE_URL") and os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if config:
        app.config.update(config)
    if not app.config.get("DATABASE_URL"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'plansheet.db'}"
    policy = str(app.config.get("OVER_ALLOCATION", "flag")).strip().lower()
    if policy not in OVER_ALLOCATION_POLICIES:
        raise ConfigError(
            f"OVER_ALLOCATION is {app.config['OVER_ALLOCATION']!r}; use one of {', '.join(OVER_ALLOCATION_POLICIES)}"
        )
    app.config["OVER_ALLOCATION"] = policy
    app.extensions[STORE] = Store(app.config["DATABASE_URL"])
    app.extensions[SCHEMA] = build_schema(load_config(app.config.get("ORG_CONFIG")))
    if not app.config.get("SECRET_KEY"):
        # Sessions then last until the process stops and are not shared between workers: set SECRET_KEY.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.logger.warning("PLANSHEET_SECRET_KEY is not set: dashboard logins end when this process stops")
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    problems.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    return app


def store_of(app: Flask) -> Store:
    return app.extensions[STORE]


def schema_of(app: Flask) -> PlanSchema:
    return app.extensions[SCHEMA]
