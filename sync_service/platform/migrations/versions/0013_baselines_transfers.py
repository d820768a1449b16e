"""the budget baseline; budget transfers and their approvals; each user's notification address and choice

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("notify", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "baselines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("master_version", sa.Integer(), nullable=False),
        sa.Column("allocation_revision", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["master_version"], ["master_versions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("from_region", sa.String(length=40), nullable=False),
        sa.Column("from_quarter", sa.String(length=2), nullable=False),
        sa.Column("from_channel", sa.String(length=60), nullable=False),
        sa.Column("to_region", sa.String(length=40), nullable=False),
        sa.Column("to_quarter", sa.String(length=2), nullable=False),
        sa.Column("to_channel", sa.String(length=60), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "transfer_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("allocation_revision", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["allocation_revision"], ["allocation_revisions.id"]),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transfer_id", "step"),
    )
    op.create_index("ix_transfer_decisions_transfer_id", "transfer_decisions", ["transfer_id"])


def downgrade() -> None:
    op.drop_index("ix_transfer_decisions_transfer_id", table_name="transfer_decisions")
    op.drop_table("transfer_decisions")
    op.drop_table("transfers")
    op.drop_table("baselines")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notify")
        batch.drop_column("email")
