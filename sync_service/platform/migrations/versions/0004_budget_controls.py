"""plan bases, submission totals, allocations, actual imports and period locks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 03:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("based_on_submission", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("base", sa.JSON(), nullable=True))
    with op.batch_alter_table("submission_lines") as batch:
        batch.add_column(sa.Column("row", sa.Integer(), nullable=True))
    op.create_table(
        "submission_totals",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=2), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("submission_id", "quarter", "channel"),
    )
    op.create_table(
        "allocation_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "allocation_cells",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("quarter", sa.String(length=2), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["revision_id"], ["allocation_revisions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("revision_id", "region", "quarter", "channel"),
    )
    op.create_table(
        "actual_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "actual_amounts",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["actual_imports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("import_id", "team_id", "line_id"),
    )
    op.create_table(
        "period_locks",
        sa.Column("month", sa.String(length=3), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("month"),
    )


def downgrade() -> None:
    for table in ("period_locks", "actual_amounts", "actual_imports", "allocation_cells", "allocation_revisions"):
        op.drop_table(table)
    op.drop_table("submission_totals")
    with op.batch_alter_table("submission_lines") as batch:
        batch.drop_column("row")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("base")
        batch.drop_column("based_on_submission")
