"""team sheets: the Google spreadsheet each team plans in; line IDs as long as the plan allows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "team_sheets",
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("spreadsheet_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )

    for table in ("submission_lines", "actual_amounts"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("line_id", type_=sa.String(length=255), existing_type=sa.String(length=64))


def downgrade() -> None:
    for table in ("submission_lines", "actual_amounts"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("line_id", type_=sa.String(length=64), existing_type=sa.String(length=255))
    op.drop_table("team_sheets")
