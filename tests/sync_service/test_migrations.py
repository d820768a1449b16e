"""The migrations' stairway: a database populated at any earlier revision upgrades keeping every row.

For each revision, an empty database is brought to it and every table it has gets rows (values of
each column's type, every foreign key pointing at a real row); then it is upgraded, straight to
the newest revision and one revision at a time, and every row must still be there with every
value it had. On SQLite this is what the batch migrations' table copies must survive with foreign
keys enforced; on PostgreSQL the same migrations run as they do in production.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, insert, select, types
from sqlalchemy.engine import Engine

from sync_service.platform.migrate import alembic_config, current_schema, newest_schema

REVISIONS = [
    s.revision for s in reversed(list(ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()))
]


def test_the_revisions_are_one_line_to_the_newest() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [newest_schema()] == [REVISIONS[-1]]
    assert script.get_bases() == [REVISIONS[0]]


def _value(column: Any, k: int, rows: dict[str, list[dict[str, Any]]]) -> Any:
    """A value for `column` in row `k`: a foreign key points at a row already written."""
    for key in column.foreign_keys:
        parents = rows.get(key.column.table.name) or []
        if parents:
            return parents[k % len(parents)][key.column.name]
        return None
    kind = column.type
    if isinstance(kind, types.Boolean):
        return k % 2 == 0
    if isinstance(kind, types.Integer):
        return k + 1
    if isinstance(kind, types.DateTime):
        return dt.datetime(2026, 2, 1 + k, 9, 30, tzinfo=dt.UTC)
    if isinstance(kind, types.Date):
        return dt.date(2026, 2, 1 + k)
    if isinstance(kind, types.JSON):
        return {"row": k, "values": [k, "x"]}
    if isinstance(kind, types.LargeBinary):
        return bytes([k]) * 8
    if isinstance(kind, types.Numeric | types.Float):
        return 1.5 + k
    length = getattr(kind, "length", None) or 40
    return f"{k}-{column.name}"[:length]  # the row number first: unique however short the column


def _populate(engine: Engine, revision: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Two rows in every table of the database (at `revision`) that has none of ours yet."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version" or table.name in rows:
                continue
            written = []
            for k in range(2):
                row = {c.name: _value(c, k, rows) for c in table.columns}
                row = {n: (f"{revision}-{v}" if isinstance(v, str) and n == "id" else v) for n, v in row.items()}
                connection.execute(insert(table), [row])
                written.append(row)
            rows[table.name] = written


def _same(kept: Any, had: Any) -> bool:
    if isinstance(had, dt.datetime) and isinstance(kept, dt.datetime):
        aware = [m if m.tzinfo else m.replace(tzinfo=dt.UTC) for m in (kept, had)]
        return aware[0] == aware[1]
    if isinstance(had, float):
        return float(kept) == had
    return kept == had


def _lost(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every row written earlier that is gone or changed (new columns are fine)."""
    lost = []
    with engine.connect() as connection:
        for name, written in rows.items():
            table = Table(name, MetaData(), autoload_with=connection)
            found = [dict(r) for r in connection.execute(select(table)).mappings()]
            for row in written:
                if not any(all(_same(f.get(c), v) for c, v in row.items() if c in f) for f in found):
                    lost.append(f"{name}: {row}")
            if len(found) != len(written):
                lost.append(f"{name}: {len(written)} rows became {len(found)}")
    return lost


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stairway.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_one_revision_at_a_time_every_row_written_on_the_way_is_kept(empty_url: str) -> None:
    from sync_service.platform.storage import make_engine

    engine = make_engine(empty_url)  # the service's own engine: SQLite with foreign keys enforced
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        for revision in REVISIONS:
            command.upgrade(alembic_config(empty_url), revision)
            assert _lost(engine, rows) == [], revision
            _populate(engine, revision, rows)
        assert current_schema(empty_url) == newest_schema()
        assert len(rows) >= 35
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("start", REVISIONS[:-1])
def test_a_database_populated_at_any_revision_upgrades_straight_to_the_newest(empty_url: str, start: str) -> None:
    from sync_service.platform.migrate import upgrade
    from sync_service.platform.storage import make_engine

    command.upgrade(alembic_config(empty_url), start)
    engine = make_engine(empty_url)
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        _populate(engine, start, rows)
        engine.dispose()
        upgraded = upgrade(empty_url)
        assert (upgraded.before, upgraded.after) == (start, newest_schema())
        assert _lost(engine, rows) == []
    finally:
        engine.dispose()
