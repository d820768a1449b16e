"""Upgrades as people meet them: an earlier release's own database, upgraded by this one, keeps every row and figure.

`upgrades/release-2026-12-03.*` is what that release's `plansheet demo` left (schema 0007: its users
with tokens and passwords, plans, approvals, actuals) and what its API answered then
(`make_fixture.py` made both). On SQLite the file itself is upgraded; on PostgreSQL the same rows
are loaded into a database that release's migrations made, then upgraded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, create_engine, func, insert, select, text

from sync_service.app import create_app
from sync_service.cli import cli
from sync_service.platform.context import STORE
from sync_service.platform.migrate import alembic_config, current_schema, newest_schema, upgrade

HERE = Path(__file__).resolve().parent / "upgrades"
RELEASE = json.loads((HERE / "release-2026-12-03.json").read_text())
DATABASE = HERE / "release-2026-12-03.sqlite"


def _kept(before: Any, after: Any, where: str = "") -> list[str]:
    """Where `after` lost or changed something `before` had (keys `after` added are fine)."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return [f"{where}: {after!r} is no longer an object"]
        return [p for k, v in before.items() for p in _kept(v, after.get(k, "<missing>"), f"{where}.{k}")]
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) != len(before):
            return [f"{where}: {len(before)} items became {len(after) if isinstance(after, list) else after!r}"]
        return [p for k, (b, a) in enumerate(zip(before, after, strict=True)) for p in _kept(b, a, f"{where}[{k}]")]
    if isinstance(before, str) and isinstance(after, str) and _moment(before) and _moment(after):
        return [] if _moment(before) == _moment(after) else [f"{where}: {before!r} became {after!r}"]
    return [] if before == after else [f"{where}: {before!r} became {after!r}"]


def _moment(text: str) -> dt.datetime | None:
    """A stored time as one instant: SQLite gives it without a zone, PostgreSQL in UTC."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: connection.scalar(select(func.count()).select_from(table))
                for name, table in metadata.tables.items()
                if name != "alembic_version"
            }
    finally:
        engine.dispose()


def _the_release_on(url: str, tmp_path: Path) -> str:
    """The release's database at `url` (SQLite: a copy of its file; PostgreSQL: its rows, in its schema)."""
    if url.startswith("sqlite"):
        path = tmp_path / "release.db"
        shutil.copy(DATABASE, path)
        return f"sqlite:///{path}"
    command.upgrade(alembic_config(url), RELEASE["revision"])
    source, target = create_engine(f"sqlite:///{DATABASE}"), create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(target)
        with source.connect() as reading, target.begin() as writing:
            for table in metadata.sorted_tables:
                if table.name == "alembic_version":
                    continue
                rows = [dict(r) for r in reading.execute(select(table)).mappings()]
                if rows:
                    writing.execute(insert(table), rows)
                if "id" in table.c and rows and isinstance(rows[0]["id"], int) and table.c.id.autoincrement:
                    writing.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :top)"),
                        {"top": max(r["id"] for r in rows)},
                    )
    finally:
        source.dispose()
        target.dispose()
    return url


@pytest.fixture
def client_of() -> Iterator[Callable[[str], FlaskClient]]:
    """A test client of this release's app on a database (its engine closed after the test)."""
    apps: list[Flask] = []

    def make(url: str) -> FlaskClient:
        apps.append(create_app({"DATABASE_URL": url, "TESTING": True}))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions[STORE].dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def release_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (
        f"sqlite:///{tmp_path / 'unused.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    return _the_release_on(url, tmp_path)


def test_the_release_database_is_what_its_release_left() -> None:
    with sqlite3.connect(DATABASE) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (RELEASE["revision"],)
        assert connection.execute("SELECT count(*) FROM users").fetchone()[0] >= 5
    assert RELEASE["revision"] != newest_schema()


def test_this_release_refuses_to_serve_the_old_schema_naming_the_fix(release_url: str, client_of: Any) -> None:
    client = client_of(release_url)
    answer = client.get("/api/v1/master", headers={"Authorization": f"Bearer {RELEASE['tokens']['finance']}"})
    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert f"the database schema is {RELEASE['revision']}" in answer.json["detail"]
    assert "run plansheet init" in answer.json["detail"]
    assert client.get("/health").status_code == 200


def test_the_release_database_upgrades_keeping_every_row_and_every_figure(release_url: str, client_of: Any) -> None:
    before = _rows(release_url)
    upgraded = upgrade(release_url, 2027)
    assert (upgraded.before, upgraded.after) == (RELEASE["revision"], newest_schema())
    assert current_schema(release_url) == newest_schema()
    after = _rows(release_url)
    assert {t: n for t, n in after.items() if t in before} == before  # every table's rows, none lost or added
    engine = create_engine(release_url)
    with engine.connect() as connection:  # the release knew one year: its rows are all the year it ran
        for table in ("submissions", "master_versions", "actual_imports", "period_locks", "allocation_revisions"):
            years = connection.execute(text(f"SELECT DISTINCT fiscal_year FROM {table}")).scalars().all()
            assert years in ([], [2027]), (table, years)
    engine.dispose()
    client = client_of(release_url)
    for path, answer in RELEASE["answers"].items():
        if isinstance(answer, dict) and "as_of" in answer:  # answered as of the day it was recorded, not today
            path = f"{path}&as_of={answer['as_of']}"
        now = client.get(path, headers={"Authorization": f"Bearer {RELEASE['tokens']['finance']}"})
        assert now.status_code == 200, (path, now.json)
        assert _kept(answer, now.json, path) == []
    for name, token in RELEASE["tokens"].items():  # every user's token still signs them in
        assert client.get("/api/v1/master/version", headers={"Authorization": f"Bearer {token}"}).status_code == 200, (
            name
        )
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    login = client.post("/login", data={"name": "finance", "password": RELEASE["password"], "csrf_token": csrf})
    assert login.status_code == 302  # the password set by that release still signs its user in


def test_plansheet_init_copies_a_sqlite_file_aside_then_upgrades_it(tmp_path: Path) -> None:
    url = _the_release_on(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path)
    result = CliRunner().invoke(cli, ["init"], env={"PLANSHEET_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    copies = list(tmp_path.glob(f"release.db.before-{RELEASE['revision']}-*.db"))
    assert len(copies) == 1
    assert f"copied the database aside to {copies[0]}" in result.output
    assert f"upgraded the database schema from {RELEASE['revision']} to {newest_schema()}" in result.output
    with sqlite3.connect(copies[0]) as connection:  # the copy is the release's database, whole
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (RELEASE["revision"],)
        assert (
            connection.execute("SELECT count(*) FROM submissions").fetchone()[0]
            == _rows(f"sqlite:///{DATABASE}")["submissions"]
        )
    again = CliRunner().invoke(cli, ["init"], env={"PLANSHEET_DATABASE_URL": url})
    assert again.exit_code == 0 and "copied" not in again.output  # already current: nothing to copy
