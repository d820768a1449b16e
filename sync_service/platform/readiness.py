"""Readiness: can this process serve requests now? (`GET /ready`, what a load balancer asks.)

Liveness (`/health`) says the process and its database answer; readiness says more: the
database is at the newest schema this code expects (a worker started before `plansheet init`
ran, or a new release on an old database, must not take traffic), and Redis answers when the
configuration says the workers share it. A proxy takes a worker out of rotation while it is not
ready, without restarting it.
"""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_service.platform.errors import NotReady
from sync_service.platform.migrate import newest_schema
from sync_service.platform.storage import Store


def check(app: Flask, store: Store) -> dict[str, Any]:
    """Every check's outcome; raises NotReady naming each check that failed and what to do."""
    checks: dict[str, str] = {}
    problems: list[str] = []
    try:
        with store.engine.connect() as connection:  # one connection: it answers, and it says its schema
            connection.execute(text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_revision()
        expected = newest_schema()
        checks["database"] = "ok"
        checks["schema_revision"] = current or "none"
        if current != expected:
            problems.append(
                f"the database schema is {current or 'not created'}, this release needs {expected}: run plansheet init"
            )
    except SQLAlchemyError as exc:
        checks["database"] = "unreachable"
        problems.append(f"the database does not answer ({exc.__class__.__name__})")
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        import redis

        try:
            client = redis.Redis.from_url(str(redis_url), socket_timeout=2, socket_connect_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = "unreachable"
            problems.append(f"Redis at REDIS_URL does not answer ({exc.__class__.__name__})")
    else:
        checks["redis"] = "not configured"
    if problems:
        raise NotReady("; ".join(problems), checks=checks)
    return {"status": "ready", **checks}


def require_current_schema(store: Store) -> None:
    """Refuse to serve (503, naming the fix) while the database is behind the schema this release needs.

    Asked before each request until the database is found current; a schema never goes back, so
    from then on it costs nothing. Without it a release on an old database answers 500 everywhere.
    """
    if store.schema_current:
        return
    expected = newest_schema()
    try:
        with store.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError:
        return  # an unreachable database is the request's own error to report
    if current is not None and current != expected:  # (no schema at all: a new database, `/ready` says so)
        raise NotReady(
            f"the database schema is {current} and this release needs {expected}: "
            "run plansheet init (it copies a SQLite file aside, then upgrades it)"
        )
    store.schema_current = current == expected
