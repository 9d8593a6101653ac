"""Arena: battles (both conversations, models, sides, voter) and votes (at most one per battle).

Revision ID: 0002_arena_battles_and_votes
Revises: 0001_base
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_arena_battles_and_votes"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_battles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("voter", sa.String(length=128), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("model_a", sa.String(length=256), nullable=False),
        sa.Column("model_b", sa.String(length=256), nullable=False),
        sa.Column("conversation_a", sa.JSON(), nullable=False),
        sa.Column("conversation_b", sa.JSON(), nullable=False),
        sa.Column("tokens_a", sa.Integer(), nullable=False),
        sa.Column("tokens_b", sa.Integer(), nullable=False),
        sa.Column("error_a", sa.Text(), nullable=True),
        sa.Column("error_b", sa.Text(), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arena_battles")),
    )
    op.create_index(op.f("ix_arena_battles_voter"), "arena_battles", ["voter"])
    op.create_table(
        "arena_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("battle_id", sa.String(length=64), nullable=False),
        sa.Column("voter", sa.String(length=128), nullable=False),
        sa.Column("winner", sa.String(length=32), nullable=False),
        sa.Column("voted_at", sa.Float(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["battle_id"], ["arena_battles.id"],
                                name=op.f("fk_arena_votes_battle_id_arena_battles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arena_votes")),
        sa.UniqueConstraint("battle_id", name=op.f("uq_arena_votes_battle_id")),
    )
    op.create_index(op.f("ix_arena_votes_voter"), "arena_votes", ["voter"])
    op.create_index(op.f("ix_arena_votes_voted_at"), "arena_votes", ["voted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_arena_votes_voted_at"), table_name="arena_votes")
    op.drop_index(op.f("ix_arena_votes_voter"), table_name="arena_votes")
    op.drop_table("arena_votes")
    op.drop_index(op.f("ix_arena_battles_voter"), table_name="arena_battles")
    op.drop_table("arena_battles")
