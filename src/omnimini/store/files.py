"""Files: bytes on disk under `<data_dir>/files/<id>`, metadata in the store (`files`).

A file is written under a temporary name, fsynced, renamed into place, and only then recorded, so
a row always has its bytes. A crash between rename and commit leaves an orphan file without a row,
which `sweep()` (run at start-up) removes.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO, Iterable

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from omnimini.store.base import Base
from omnimini.store.db import Store

COPY_CHUNK = 1 << 20
# Bytes without a row are only removed once this old: another process may be about to commit them.
ORPHAN_GRACE_S = 3600


class FileRecord(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)        # file-...
    key_id: Mapped[str | None] = mapped_column(String(40), index=True)   # owner; NULL in no-auth mode
    filename: Mapped[str] = mapped_column(String(1000))
    purpose: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer, index=True)
    expires_at: Mapped[int | None] = mapped_column(Integer)

    def wire(self) -> dict:
        """OpenAI's File object."""
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "expires_at": self.expires_at, "filename": self.filename, "purpose": self.purpose,
                "status": "processed", "status_details": None}


class FileTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the file is larger than {limit} bytes")
        self.limit = limit


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


class FileStore:
    def __init__(self, store: Store, root: Path):
        self.store = store
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        if not file_id.startswith("file-") or not file_id[5:].isalnum():
            raise KeyError(file_id)          # never let an id walk the file system
        return self.root / file_id

    def write_bytes(self, chunks: Iterable[bytes] | BinaryIO, *, max_bytes: int | None = None) -> tuple[str, int]:
        """Write to disk under a fresh id; returns (id, size). Not yet recorded: call `add`."""
        file_id = new_file_id()
        tmp = self.root / f".{file_id}.part"
        size = 0
        source = iter(lambda: chunks.read(COPY_CHUNK), b"") if hasattr(chunks, "read") else chunks
        try:
            with open(tmp, "wb") as f:
                for chunk in source:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileTooLarge(max_bytes)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(file_id))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return file_id, size

    def add(self, session: Session, file_id: str, size: int, *, filename: str, purpose: str,
            key_id: str | None, expires_at: int | None = None) -> FileRecord:
        row = FileRecord(id=file_id, key_id=key_id, filename=filename, purpose=purpose, bytes=size,
                         created_at=int(time.time()), expires_at=expires_at)
        session.add(row)
        return row

    def create(self, data: Iterable[bytes] | BinaryIO, *, filename: str, purpose: str, key_id: str | None,
               max_bytes: int | None = None, expires_at: int | None = None) -> FileRecord:
        file_id, size = self.write_bytes(data, max_bytes=max_bytes)
        try:
            with self.store.write() as s:
                return self.add(s, file_id, size, filename=filename, purpose=purpose, key_id=key_id,
                                expires_at=expires_at)
        except BaseException:
            self.path(file_id).unlink(missing_ok=True)
            raise

    def get(self, file_id: str) -> FileRecord | None:
        """The file, or None if unknown or past its expiry (even before `delete_expired` ran)."""
        with self.store.read() as s:
            row = s.get(FileRecord, file_id)
        if row is not None and row.expires_at is not None and row.expires_at <= time.time():
            return None
        return row

    def list(self, *, key_id: str | None, all_keys: bool, purpose: str | None = None) -> list[FileRecord]:
        q = select(FileRecord).order_by(FileRecord.created_at, FileRecord.id).where(
            (FileRecord.expires_at.is_(None)) | (FileRecord.expires_at > int(time.time())))
        if not all_keys:
            q = q.where(FileRecord.key_id.is_(None) if key_id is None else FileRecord.key_id == key_id)
        if purpose:
            q = q.where(FileRecord.purpose == purpose)
        with self.store.read() as s:
            return list(s.scalars(q))

    def delete(self, file_id: str) -> bool:
        with self.store.write() as s:
            row = s.get(FileRecord, file_id)
            if row is None:
                return False
            s.delete(row)
        self.path(file_id).unlink(missing_ok=True)
        return True

    def delete_expired(self) -> int:
        with self.store.read() as s:
            ids = list(s.scalars(select(FileRecord.id).where(FileRecord.expires_at <= int(time.time()))))
        return sum(self.delete(i) for i in ids)

    def sweep(self) -> int:
        """Remove bytes without a row (a crash between writing and recording) and stale .part files."""
        with self.store.read() as s:
            known = set(s.scalars(select(FileRecord.id)))
        removed = 0
        cutoff = time.time() - ORPHAN_GRACE_S
        for p in self.root.iterdir():
            if p.stat().st_mtime >= cutoff:
                continue                      # maybe another process is between write and commit
            if p.name.startswith(".") or (p.name.startswith("file-") and p.name not in known):
                p.unlink(missing_ok=True)
                removed += 1
        return removed
