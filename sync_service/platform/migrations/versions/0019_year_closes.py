"""year closes: a fiscal year finance closed is read-only

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "year_closes",
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("fiscal_year"),
    )


def downgrade() -> None:
    op.drop_table("year_closes")
