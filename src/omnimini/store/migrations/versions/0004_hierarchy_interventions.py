"""hierarchy interventions (issue 7): per-key defence policy; guards that acted, per usage row

Revision ID: 0004_hierarchy_interventions
Revises: 0003_platform
Create Date: 2026-11-21 16:08:11.903340
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004_hierarchy_interventions'
down_revision = '0003_platform'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER most things; add_column works either way, batch keeps it uniform
    with op.batch_alter_table("access_api_keys") as batch:
        batch.add_column(sa.Column("hierarchy", sa.String(length=40), nullable=True))
    with op.batch_alter_table("metering_usage") as batch:
        batch.add_column(sa.Column("interventions", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metering_usage") as batch:
        batch.drop_column("interventions")
    with op.batch_alter_table("access_api_keys") as batch:
        batch.drop_column("hierarchy")
