"""Audio reply ids kept in the store, so that a client can send `{"role": "assistant", "audio": {"id"}}`
back after a restart, or to another server on the same database, until the id's `expires_at`
(service/audio_reply.py's AUDIO_TTL, as OpenAI's audio ids expire).

The calls are short blocking statements on the caller's thread (one primary-key insert or lookup);
expired rows are deleted by the inserts, a bounded batch at a time.
"""

from __future__ import annotations

import time

from sqlalchemy import Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from omnimini.store import Base, Store

PURGE_BATCH = 500                # expired rows deleted per insert, at most


class AudioTranscript(Base):
    __tablename__ = "audio_transcripts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)      # the audio reply's id
    transcript: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)       # unix seconds


def save(store: Store, audio_id: str, transcript: str, expires_at: int) -> None:
    now = int(time.time())
    with store.write() as s:
        old = select(AudioTranscript.id).where(AudioTranscript.expires_at <= now).limit(PURGE_BATCH)
        s.execute(delete(AudioTranscript).where(AudioTranscript.id.in_(old.scalar_subquery())))
        s.merge(AudioTranscript(id=audio_id, transcript=transcript, expires_at=expires_at))


def load(store: Store, audio_id: str) -> str | None:
    """The transcript, or None when the id is unknown or has expired."""
    with store.read() as s:
        row = s.get(AudioTranscript, audio_id)
        return row.transcript if row is not None and row.expires_at > time.time() else None
