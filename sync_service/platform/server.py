"""Serving the sync service: waitress for one process, gunicorn for several (`plansheet serve --workers N`).

One process (the default, and on Windows) is waitress with threads: nothing to set up. Several
processes are gunicorn's pre-forked workers, each with its own app made after the fork (so no
database connection crosses a fork). Workers share everything through the database and Redis:
the dashboard's sessions and their signing key, API tokens, idempotency records and locks in
the database; the failed-login counts in Redis. Several workers therefore need a PostgreSQL
database and REDIS_URL, and refuse to start without them rather than quietly keeping state of
their own. gunicorn gives the rest: a worker that dies (or is killed) is replaced at once,
SIGHUP replaces every worker gracefully (each finishes its requests first) with the
configuration read again, and SIGTERM drains and stops.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from sheet_templates.errors import ConfigError
from sync_service.platform.context import STORE

GRACEFUL_SECONDS = 30  # how long a worker may finish its requests on reload or stop
REQUEST_SECONDS = 120  # a worker silent this long is killed and replaced (a hung request)


def several_workers_allowed(config: Mapping[str, Any]) -> None:
    """Refuse what would give each worker state of its own; the message names the setting to change."""
    url = str(config.get("DATABASE_URL") or "")
    if not url.startswith("postgresql"):
        raise ConfigError(
            "several workers need a PostgreSQL database they all share: set PLANSHEET_DATABASE_URL="
            "postgresql+psycopg://user@host/db (SQLite serves one process; use --workers 1 with it)"
        )
    if not config.get("REDIS_URL"):
        raise ConfigError(
            "several workers need PLANSHEET_REDIS_URL (redis://host:6379/0): the failed-login limits "
            "must be counted once for all workers, not once per worker"
        )


def serve_one(app: Flask, host: str, port: int, threads: int) -> None:
    """One waitress process with `threads` threads."""
    from waitress import serve as serve_wsgi

    # Behind a proxy (PROXY_HOPS > 0) the app's ProxyFix reads X-Forwarded-*; waitress must pass them on.
    proxied = int(app.config.get("PROXY_HOPS") or 0) > 0
    serve_wsgi(app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=not proxied)


def gunicorn_options(config: Mapping[str, Any], host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """Gunicorn's settings for `workers` processes of `threads` threads each."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "graceful_timeout": GRACEFUL_SECONDS,
        "timeout": REQUEST_SECONDS,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "plansheet",
        # The body limit is the app's (MAX_CONTENT_LENGTH, 413); gunicorn's own limits stay at their defaults.
    }
    if int(config.get("PROXY_HOPS") or 0) > 0:
        # The app's ProxyFix trusts exactly PROXY_HOPS proxies; gunicorn must not decide the scheme itself.
        options["forwarded_allow_ips"] = "*"
    else:
        options["secure_scheme_headers"] = {}  # no proxy: a client's X-Forwarded-Proto means nothing
    return options


def serve_many(make_app: Callable[[], Flask], host: str, port: int, workers: int, threads: int) -> None:
    """Gunicorn with `workers` processes; each makes its own app from `make_app` after the fork."""
    if sys.platform == "win32":
        raise ConfigError("several workers need gunicorn, which runs on Linux and macOS; on Windows use --workers 1")
    from gunicorn.app.base import BaseApplication

    probe = make_app()  # fail here, once, on a bad configuration, before any worker starts
    several_workers_allowed(probe.config)
    options = gunicorn_options(probe.config, host, port, workers, threads)
    probe.extensions[STORE].dispose()  # the master process keeps no connection for the workers to inherit

    class Plansheet(BaseApplication):  # type: ignore[misc]
        """gunicorn's application: the settings above, and a new app in every worker."""

        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return make_app()

    Plansheet().run()
