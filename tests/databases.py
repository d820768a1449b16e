"""A new database at the newest schema in a fraction of the migrations' time, for tests that start from nothing.

`upgrade(url)` is `sync_service.platform.migrate.upgrade` for a database that holds nothing yet: the
migration chain runs once per test process into a template (a SQLite file, or a PostgreSQL template
database), and each new database is a copy of it: SQLite's backup API for a file, `CREATE DATABASE ...
TEMPLATE` for PostgreSQL. Any other database (one that exists, holds tables or a revision) goes
through the real upgrade, and so do the tests of the migrations themselves, which import it directly.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync_service.platform import migrate

_FOLDER: Path | None = None
_SQLITE: dict[int | None, Path] = {}
_POSTGRES: dict[tuple[str, int | None], str] = {}


def _folder() -> Path:
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = Path(tempfile.mkdtemp(prefix="plansheet-schema-"))
        atexit.register(shutil.rmtree, _FOLDER, True)
    return _FOLDER


def upgrade(url: str, year: int | None = None) -> migrate.Upgraded:
    """The database at `url` at the newest schema (a copy of a migrated template when it holds nothing yet)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        target = Path(parsed.database)
        if not target.exists() or target.stat().st_size == 0:
            _copy_sqlite(_sqlite_template(year), target)
            return migrate.Upgraded(None, migrate.newest_schema(), None)
    elif parsed.get_backend_name() == "postgresql" and migrate.current_schema(url) is None and _empty(url):
        _clone_postgres(url, _postgres_template(url, year))
        return migrate.Upgraded(None, migrate.newest_schema(), None)
    return migrate.upgrade(url, year)


def _sqlite_template(year: int | None) -> Path:
    if year not in _SQLITE:
        path = _folder() / f"schema-{year or 'default'}.db"
        migrate.upgrade(f"sqlite:///{path}", year)
        _SQLITE[year] = path
    return _SQLITE[year]


def _copy_sqlite(template: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def _admin(url: str) -> str:
    return os.environ.get("PLANSHEET_TEST_POSTGRES") or make_url(url).set(database="postgres").render_as_string(
        hide_password=False
    )


def _empty(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return not connection.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            ).scalar()
    finally:
        engine.dispose()


def _postgres_template(url: str, year: int | None) -> str:
    admin_url = _admin(url)
    key = (admin_url, year)
    if key not in _POSTGRES:
        name = f"plansheet_schema_{uuid.uuid4().hex[:12]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            migrate.upgrade(make_url(admin_url).set(database=name).render_as_string(hide_password=False), year)
        finally:
            admin.dispose()
        atexit.register(_drop_postgres, admin_url, name)
        _POSTGRES[key] = name
    return _POSTGRES[key]


def _clone_postgres(url: str, template: str) -> None:
    """Replace the empty scratch database at `url` by a copy of the template (same name, so the fixture drops it)."""
    name = make_url(url).database
    admin = create_engine(_admin(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()


def _drop_postgres(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # the server went first: nothing to drop
        pass
    finally:
        admin.dispose()
