"""Tables of access/: API keys (stored hashed) and the rate-limit admission log."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omnimini.store import Base


class ApiKey(Base):
    __tablename__ = "access_api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)          # key_...
    name: Mapped[str] = mapped_column(String(200), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)              # sha256 hex of the secret
    prefix: Mapped[str] = mapped_column(String(20))                         # shown in lists, e.g. sk-omni-AbC1
    rpm: Mapped[int | None] = mapped_column(Integer)                        # requests per window, per model
    tpm: Mapped[int | None] = mapped_column(Integer)                        # tokens per window, per model
    models: Mapped[str | None] = mapped_column(Text)                        # comma-separated; NULL: all
    admin: Mapped[bool] = mapped_column(Boolean, default=False)             # may read everyone's usage
    hierarchy: Mapped[str | None] = mapped_column(String(40))               # defence policy; NULL: the model's
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class RateEvent(Base):
    """One admitted request: when, for which key and model, and its tokens (reserved, then settled).
    A sliding-window log: rows older than the window are deleted at the next admission."""

    __tablename__ = "access_rate_events"
    __table_args__ = (Index("ix_access_rate_events_key_model_at", "key_id", "model", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(40), ForeignKey("access_api_keys.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    at: Mapped[float] = mapped_column(Float)
    tokens: Mapped[int] = mapped_column(Integer)
