"""master versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:54:16.972645
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_id"),
    )
    with op.batch_alter_table("master_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_master_versions_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("master_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_master_versions_team_id"))

    op.drop_table("master_versions")
