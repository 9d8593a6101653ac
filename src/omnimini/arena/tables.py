"""The arena's tables: battles (both conversations, models, sides) and votes (one per battle).

A vote is its own row with a unique battle id, so the database itself refuses a second vote.
Void votes are kept (with the reason) for audit and export, but only counted ones rate models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omnimini.store import Base


class Battle(Base):
    __tablename__ = "arena_battles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)                 # unix seconds
    updated_at: Mapped[float] = mapped_column(Float)
    voter: Mapped[str] = mapped_column(String(128), index=True)      # cookie id or hashed API key
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)   # names hidden until the vote
    model_a: Mapped[str] = mapped_column(String(256))                # contestant names, left side
    model_b: Mapped[str] = mapped_column(String(256))
    conversation_a: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    conversation_b: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tokens_a: Mapped[int] = mapped_column(Integer, default=0)        # completion tokens, all turns
    tokens_b: Mapped[int] = mapped_column(Integer, default=0)
    error_a: Mapped[str | None] = mapped_column(Text, nullable=True)  # first failed answer, if any
    error_b: Mapped[str | None] = mapped_column(Text, nullable=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)


class Vote(Base):
    __tablename__ = "arena_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(ForeignKey("arena_battles.id"), unique=True)
    voter: Mapped[str] = mapped_column(String(128), index=True)     # the daily cap counts by voter
    winner: Mapped[str] = mapped_column(String(32))                  # FastChat's verdicts
    voted_at: Mapped[float] = mapped_column(Float, index=True)
    counted: Mapped[bool] = mapped_column(Boolean)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
