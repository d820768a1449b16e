"""management packs: each month's pack as built (workbook, PDF or why none), and who subscribes to it

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "management_packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=3), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("about", sa.JSON(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_management_packs_fiscal_year", "management_packs", ["fiscal_year"])
    op.create_index("ix_management_packs_job_id", "management_packs", ["job_id"])
    op.create_table(
        "pack_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pack_subscriptions_user_id", "pack_subscriptions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_pack_subscriptions_user_id", table_name="pack_subscriptions")
    op.drop_table("pack_subscriptions")
    op.drop_index("ix_management_packs_job_id", table_name="management_packs")
    op.drop_index("ix_management_packs_fiscal_year", table_name="management_packs")
    op.drop_table("management_packs")
