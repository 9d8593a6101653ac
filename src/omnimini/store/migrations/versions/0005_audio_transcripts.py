"""audio transcripts (issue 9): audio reply ids outlive a restart, until they expire

Revision ID: 0005_audio_transcripts
Revises: 0004_hierarchy_interventions
Create Date: 2026-11-21 18:24:43.483182
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005_audio_transcripts'
down_revision = '0004_hierarchy_interventions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_transcripts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audio_transcripts_expires_at"), "audio_transcripts", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audio_transcripts_expires_at"), table_name="audio_transcripts")
    op.drop_table("audio_transcripts")
