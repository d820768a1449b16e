"""fiscal years: every plan, master version, allocation, lock, cycle, baseline, scenario, import, close in one year

Rows made before years were part of the data belong to the year the organisation file runs
(`[fiscal] year`, given by `plansheet init`); a month lock, a closed accrual and a team's Google
sheet are kept per year and month (or team).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from sheet_templates.config import load_config

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Tables whose rows each belong to a year, and whose keys stay as they are.
TAGGED = (
    "submissions",
    "master_versions",
    "allocation_revisions",
    "actual_imports",
    "outcome_imports",
    "baselines",
    "cycles",
    "scenarios",
    "transfers",
)


def _rekeyed() -> dict[str, tuple[list[str], list[sa.Column], list[sa.ForeignKeyConstraint]]]:
    """Tables keyed by month (or team): the year joins the key, so each year has its own (new objects each call)."""
    return {
        "period_locks": (
            ["fiscal_year", "month"],
            [
                sa.Column("month", sa.String(length=3), nullable=False),
                sa.Column("user_id", sa.Integer(), nullable=False),
                sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
            ],
            [sa.ForeignKeyConstraint(["user_id"], ["users.id"])],
        ),
        "accrual_closes": (
            ["fiscal_year", "month"],
            [
                sa.Column("month", sa.String(length=3), nullable=False),
                sa.Column("user_id", sa.Integer(), nullable=False),
                sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
                sa.Column("entries", sa.JSON(), nullable=False),
            ],
            [sa.ForeignKeyConstraint(["user_id"], ["users.id"])],
        ),
        "team_sheets": (
            ["team_id", "fiscal_year"],
            [
                sa.Column("team_id", sa.String(length=40), nullable=False),
                sa.Column("spreadsheet_id", sa.String(length=100), nullable=False),
                sa.Column("url", sa.String(length=300), nullable=False),
                sa.Column("based_on", sa.Integer(), nullable=True),
                sa.Column("user_id", sa.Integer(), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            ],
            [sa.ForeignKeyConstraint(["team_id"], ["teams.id"]), sa.ForeignKeyConstraint(["user_id"], ["users.id"])],
        ),
    }


def _year() -> int:
    """The year the organisation file runs: given by `plansheet init`, else read from the file in use."""
    given = context.config.attributes.get("fiscal_year")
    if given is not None:
        return int(given)
    return load_config().fiscal_year  # no year was given: the file in use


def upgrade() -> None:
    year = _year()
    for table in TAGGED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("fiscal_year", sa.Integer(), nullable=False, server_default=str(year)))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("fiscal_year", server_default=None, existing_type=sa.Integer(), existing_nullable=False)
        op.create_index(f"ix_{table}_fiscal_year", table, ["fiscal_year"])
    for table, (key, columns, constraints) in _rekeyed().items():
        names = [c.name for c in columns]
        op.create_table(
            f"{table}_by_year",
            sa.Column("fiscal_year", sa.Integer(), nullable=False),
            *columns,
            *constraints,
            sa.PrimaryKeyConstraint(*key, name=f"pk_{table}_by_year"),
        )
        listed = ", ".join(names)
        op.execute(f"INSERT INTO {table}_by_year (fiscal_year, {listed}) SELECT {year}, {listed} FROM {table}")
        op.drop_table(table)
        op.rename_table(f"{table}_by_year", table)


def downgrade() -> None:
    for table, (_, columns, constraints) in _rekeyed().items():
        names = [c.name for c in columns]
        key = [c.name for c in columns if c.name in ("month", "team_id")]
        op.create_table(
            f"{table}_one_year",
            *[sa.Column(c.name, c.type, nullable=c.nullable) for c in columns],
            *[
                sa.ForeignKeyConstraint(list(f.column_keys), [e.target_fullname for e in f.elements])
                for f in constraints
            ],
            sa.PrimaryKeyConstraint(*key, name=f"pk_{table}_one_year"),
        )
        listed = ", ".join(names)
        newest = f"(SELECT max(fiscal_year) FROM {table})"
        op.execute(f"INSERT INTO {table}_one_year ({listed}) SELECT {listed} FROM {table} WHERE fiscal_year = {newest}")
        op.drop_table(table)
        op.rename_table(f"{table}_one_year", table)
    for table in TAGGED:
        op.drop_index(f"ix_{table}_fiscal_year", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fiscal_year")
