"""Create or upgrade the database schema with Alembic (what `plansheet init` runs).

An upgrade of a SQLite file first copies it aside (`<file>.before-<revision>-<time>.db`, through
SQLite's backup API, so a file in WAL mode is copied whole), and says where. Each migration is its
own transaction: one that fails leaves the database at the last revision that finished, and the
error names that revision, what failed and what to do; nothing is left half-migrated.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from sheet_templates.errors import PlansheetError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class UpgradeFailed(PlansheetError):
    """A migration failed: the database stays at the revision named, whole."""


@dataclass(frozen=True)
class Upgraded:
    """What `upgrade` did: from which revision (None: a new database) to which, and where the copy is."""

    before: str | None
    after: str
    copy: Path | None


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def newest_schema() -> str:
    """The newest migration this code ships (the schema `plansheet init` brings a database to)."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations in {MIGRATIONS.name} have {len(heads)} heads; they must have one")
    return heads[0]


def current_schema(url: str) -> str | None:
    """The database's schema revision (None: no schema yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return path if path.is_file() else None


def copy_aside(path: Path, revision: str) -> Path:
    """A whole copy of the SQLite database at `path`, beside it, named for its revision and the time."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.before-{revision}-{stamp}.db")
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


def upgrade(url: str, year: int | None = None) -> Upgraded:
    """Bring the database at `url` to the newest schema; safe to run again.

    `year` is the fiscal year the organisation file runs: rows made before years were part of the
    data join it (default: the year of the file in use, `PLANSHEET_CONFIG` or the bundled one).
    """
    before, newest = current_schema(url), newest_schema()
    file = _sqlite_file(url)
    copy = copy_aside(file, before) if file is not None and before is not None and before != newest else None
    try:
        config = alembic_config(url)
        config.attributes["fiscal_year"] = year
        command.upgrade(config, "head")
    except Exception as exc:
        now = current_schema(url)
        kept = f"; the copy made before upgrading is {copy}" if copy else ""
        raise UpgradeFailed(
            f"upgrading the database from {before or 'nothing'} to {newest} stopped at revision {now or 'none'}: "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}. The database is whole at {now or 'none'}{kept}. "
            "This release cannot serve it until the upgrade finishes: fix what the error names and run "
            "plansheet init again, or keep the previous release running on the copy."
        ) from exc
    return Upgraded(before, newest, copy)
