"""The Flask application factory: configuration, storage and the API blueprint.

Configuration comes from the defaults in `settings.py`, then the instance file
`plansheet.cfg`, then `PLANSHEET_*` environment variables, then the mapping passed in.
The app keeps no state between requests beyond its database, so any number of processes
on any number of machines can serve one PostgreSQL database.
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from sheet_templates import PlanSchema, build_schema, load_config
from sheet_templates.errors import ConfigError
from sheet_templates.formatting import DEFAULT_LOCALE, checked_locale
from sync_service import api, web
from sync_service.api import cors, problems
from sync_service.planning.workflow import OVER_ALLOCATION_POLICIES
from sync_service.platform import context, jobs, outbox, readiness
from sync_service.platform.cache import SharedCache
from sync_service.platform.context import SCHEMA, STORE
from sync_service.platform.settings import DEFAULTS
from sync_service.platform.storage import ServiceSecret, Store
from sync_service.platform.timing import ServerTiming
from sync_service.web import sso
from sync_service.web.base import error_response

# The modules that own the job kinds this app runs: each registers its own with `jobs.kind` as it is
# imported, and the app imports them all, so a worker knows every kind whatever request came first.
JOB_OWNERS = (
    "sync_service.integrations.google.sync",
    "sync_service.documents.master_workbook",
    "sync_service.documents.packs",
    "sync_service.results.actuals",
    "sync_service.results.outcomes",
    "sync_service.spend.orders",
    "sync_service.notifications.notices",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("sync_service", instance_relative_config=True, static_folder="web/static")
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
    try:
        app.config["LOCALE"] = checked_locale(app.config.get("LOCALE", DEFAULT_LOCALE))
    except ValueError as exc:
        raise ConfigError(f"LOCALE: {exc}") from exc
    app.extensions[STORE] = Store(app.config["DATABASE_URL"])
    app.extensions[SCHEMA] = build_schema(load_config(app.config.get("ORG_CONFIG")))
    app.extensions[jobs.EXTENSION] = jobs.make_backend(app.config)
    for owner in JOB_OWNERS:
        importlib.import_module(owner)
    if app.config.get("REDIS_URL"):
        store = app.extensions[STORE]
        store.shared = SharedCache(
            app.config["REDIS_URL"],
            lambda: _shared_secret(store, "cache"),
            ttl=int(app.config.get("CACHE_TTL", 3600)),
            max_bytes=int(app.config.get("CACHE_MAX_BYTES", 64 * 2**20)),
        )
    # Flask's defaults hold SESSION_COOKIE_SAMESITE=None, so a setdefault would leave it off: set it.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = SharedKeySessions()
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    web.init_limits(app)
    problems.init_app(app, page=error_response)  # a browser gets the dashboard's error page
    cors.init_app(app)
    app.teardown_appcontext(outbox.dispatch_pending)  # notices staged by an action, once it has ended
    app.before_request(_schema_guard)
    app.register_blueprint(api.blueprint())
    app.register_blueprint(web.blueprint())
    sso.init_app(app, app.extensions[SCHEMA])
    app.wsgi_app = ServerTiming(app.wsgi_app)  # type: ignore[method-assign]
    hops = _proxy_hops(app.config.get("PROXY_HOPS"))
    if hops:  # trust exactly that many proxies' X-Forwarded-For/-Proto/-Host/-Port, never a client's
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
    return app


_UNGUARDED = ("/health", "/ready")  # they answer for the database themselves


def _schema_guard() -> None:
    """503 naming `plansheet init` while the database is behind this release's schema (never a 500 per route)."""
    if request.path not in _UNGUARDED and not request.path.startswith("/static/"):
        readiness.require_current_schema(context.store())


def _proxy_hops(value: Any) -> int:
    try:
        hops = int(value or 0)
    except (TypeError, ValueError):
        hops = -1
    if hops < 0 or isinstance(value, float):
        raise ConfigError(f"PROXY_HOPS is {value!r}; write the number of proxies in front of the service (0: none)")
    return hops


class SharedKeySessions(SecureCookieSessionInterface):
    """Signed-cookie sessions whose key, when SECRET_KEY is not configured, is kept in the database.

    Every worker on one database then signs with the same key, so a login made on one is valid on
    all; the key is made once, on the first request that needs it.
    """

    def get_signing_serializer(self, app: Flask) -> Any:
        if not app.secret_key:
            try:
                app.secret_key = _shared_secret(app.extensions[STORE], "session")
            except SQLAlchemyError:  # a database not created yet (plansheet init): no sessions until it is
                app.logger.warning("no session key: the database is not ready; run plansheet init")
                return None
        return super().get_signing_serializer(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure over HTTPS, and always when SESSION_COOKIE_SECURE is set (behind a proxy that ends TLS)."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True  # no script of any page ever needs the session cookie


def _shared_secret(store: Store, name: str) -> str:
    for _ in range(2):
        with store.reading() as session:
            row = session.get(ServiceSecret, name)
            if row is not None:
                return row.value
        try:
            with store.transaction() as session:
                session.add(ServiceSecret(name=name, value=secrets.token_hex(32)))
        except IntegrityError:  # another worker made it first: read theirs
            continue
    raise RuntimeError("the shared session key could not be read or made")


def store_of(app: Flask) -> Store:
    return app.extensions[STORE]


def schema_of(app: Flask) -> PlanSchema:
    return app.extensions[SCHEMA]
