"""The usage table: one row per request that reached a model."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omnimini.store import Base


class UsageRecord(Base):
    __tablename__ = "metering_usage"
    __table_args__ = (Index("ix_metering_usage_key_created", "key_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)   # unix seconds: when it was admitted
    request_id: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(40))         # NULL: no-auth mode
    model: Mapped[str] = mapped_column(String(200))                # the snapshot that answered
    endpoint: Mapped[str] = mapped_column(String(100))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)        # USD
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[int] = mapped_column(Integer)                   # HTTP status of the answer
    interventions: Mapped[str | None] = mapped_column(Text)        # JSON list: guards that acted (issue 7)
