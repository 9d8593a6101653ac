"""Tables of the Batch API: the batch and one row per input line.

A line's answer is written into its row in the same transaction that bills it and bumps the
batch's counters, and only if the row is still pending; so a worker killed mid-line re-runs that
line after a restart, and no line is ever answered twice. The output and error files are built
from the rows, in input order, when the batch finalizes.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omnimini.store import Base


class BatchRecord(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)        # batch_...
    key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), index=True)
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[str | None] = mapped_column(Text)                       # JSON list of BatchError
    metadata_json: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(Integer)
    in_progress_at: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer)
    finalizing_at: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer)
    failed_at: Mapped[int | None] = mapped_column(Integer)
    expired_at: Mapped[int | None] = mapped_column(Integer)
    cancelling_at: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))                 # worker holding the lease
    lease_until: Mapped[float | None] = mapped_column(Float)


class BatchLine(Base):
    __tablename__ = "batch_lines"
    __table_args__ = (UniqueConstraint("batch_id", "line", name="uq_batch_lines_batch_id_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64), ForeignKey("batches.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)                               # 1-based line number
    custom_id: Mapped[str | None] = mapped_column(String(512))
    body: Mapped[str | None] = mapped_column(Text)                           # the request body (JSON)
    status: Mapped[str] = mapped_column(String(10))                          # pending | done | failed
    result: Mapped[str | None] = mapped_column(Text)                         # the output/error line (JSON)
