"""results from the CRM and marketing automation; actual spend by fiscal month

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

METRICS = ("leads", "mqls", "sals", "opportunities", "won", "pipeline", "revenue")


def upgrade() -> None:
    op.create_table(
        "actual_months",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=255), nullable=False),
        sa.Column("month", sa.String(length=3), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["actual_imports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("import_id", "team_id", "line_id", "month"),
    )
    op.create_table(
        "outcome_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("preset", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("months", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outcome_imports_source", "outcome_imports", ["source", "id"])
    op.create_table(
        "outcome_amounts",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=255), nullable=False),
        sa.Column("month", sa.String(length=3), nullable=False),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in METRICS),
        sa.ForeignKeyConstraint(["import_id"], ["outcome_imports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("import_id", "team_id", "line_id", "month"),
    )


def downgrade() -> None:
    op.drop_table("outcome_amounts")
    op.drop_index("ix_outcome_imports_source", table_name="outcome_imports")
    op.drop_table("outcome_imports")
    op.drop_table("actual_months")
