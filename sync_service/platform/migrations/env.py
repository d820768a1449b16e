"""Alembic environment: migrations run online against the URL the service is configured with.

Each migration is its own transaction, so a failure leaves the database at the last revision that
finished. On SQLite a batch migration rebuilds a table by copying it, which foreign-key
enforcement refuses while other tables point at its rows; as Alembic's batch documentation says,
enforcement is off for the migrations, every foreign key is checked (`PRAGMA foreign_key_check`)
before each migration commits, and enforcement is on again afterwards.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from sync_service.platform.storage import Base, make_engine

config = context.config
target_metadata = Base.metadata


class BrokenReferences(RuntimeError):
    """A migration left rows that point at nothing; it is rolled back."""


def _check_references(connection: Connection) -> None:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        shown = "; ".join(
            f"{table} row {rowid} points at a missing {parent} row" for table, rowid, parent, _ in rows[:5]
        )
        raise BrokenReferences(f"the migration would leave {len(rows)} broken reference(s): {shown}")


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    raw: Any = connection.connection.driver_connection if sqlite else None
    if sqlite:
        connection.commit()  # no transaction open: the pragma is a no-op inside one
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            transaction_per_migration=True,
            on_version_apply=(lambda **_: _check_references(connection)) if sqlite else None,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            connection.commit()
            raw.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


run_migrations_online()
