"""crm cost: the CRM's own record of a campaign's cost, kept beside finance's actual spend

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcome_amounts") as batch:
        batch.add_column(sa.Column("crm_cost", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outcome_amounts") as batch:
        batch.drop_column("crm_cost")
