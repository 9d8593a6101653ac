"""Batches as the API sees them: create (checks), retrieve, list, cancel, and OpenAI's Batch object.
The work itself is done by `worker.BatchWorker`."""

from __future__ import annotations

import json
import secrets
import time

from sqlalchemy import select

from omnimini.batches.formats import COMPLETION_WINDOWS, SUPPORTED_ENDPOINTS
from omnimini.batches.tables import BatchRecord
from omnimini.protocol.batches import CreateBatchRequest
from omnimini.protocol.errors import InvalidRequest, NotFound
from omnimini.store import Store
from omnimini.store.files import FileStore

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
CANCELLABLE = ("validating", "in_progress")


def wire(b: BatchRecord) -> dict:
    """OpenAI's Batch object; optional fields that are unset are left out (the spec has no nulls)."""
    errors = json.loads(b.errors) if b.errors else None
    out = {
        "id": b.id, "object": "batch", "endpoint": b.endpoint, "model": b.model,
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": b.input_file_id, "completion_window": b.completion_window, "status": b.status,
        "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
        "created_at": b.created_at, "in_progress_at": b.in_progress_at, "expires_at": b.expires_at,
        "finalizing_at": b.finalizing_at, "completed_at": b.completed_at, "failed_at": b.failed_at,
        "expired_at": b.expired_at, "cancelling_at": b.cancelling_at, "cancelled_at": b.cancelled_at,
        "request_counts": {"total": b.total, "completed": b.completed, "failed": b.failed},
        "metadata": json.loads(b.metadata_json) if b.metadata_json else None,
        "usage": {"input_tokens": b.input_tokens, "input_tokens_details": {"cached_tokens": b.cached_tokens},
                  "output_tokens": b.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": b.input_tokens + b.output_tokens},
    }
    return {k: v for k, v in out.items() if v is not None}


def _not_found(batch_id: str) -> NotFound:
    return NotFound(f"No batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found")


class BatchService:
    def __init__(self, store: Store, files: FileStore):
        self.store = store
        self.files = files

    def create(self, req: CreateBatchRequest, *, key_id: str | None, all_keys: bool) -> BatchRecord:
        if req.endpoint not in SUPPORTED_ENDPOINTS:
            raise InvalidRequest(f"Invalid value for 'endpoint': {req.endpoint!r} is not supported for batches "
                                 f"here; supported: {', '.join(SUPPORTED_ENDPOINTS)}.", param="endpoint",
                                 code="invalid_value")
        if req.completion_window not in COMPLETION_WINDOWS:
            raise InvalidRequest(f"Invalid value for 'completion_window': {req.completion_window!r}; "
                                 f"supported: {', '.join(COMPLETION_WINDOWS)}.", param="completion_window",
                                 code="invalid_value")
        f = self.files.get(req.input_file_id)
        if f is None or not (all_keys or f.key_id == key_id):
            raise NotFound(f"No such File object: {req.input_file_id}", param="input_file_id",
                           code="file_not_found")
        if f.purpose != "batch":
            raise InvalidRequest(f"The input file {f.id} has purpose {f.purpose!r}; a batch needs a file "
                                 "uploaded with purpose 'batch'.", param="input_file_id", code="invalid_file")
        now = int(time.time())
        row = BatchRecord(
            id="batch_" + secrets.token_hex(12), key_id=key_id, endpoint=req.endpoint,
            input_file_id=f.id, completion_window=req.completion_window, status="validating",
            metadata_json=json.dumps(req.metadata) if req.metadata else None, created_at=now,
            expires_at=now + COMPLETION_WINDOWS[req.completion_window], total=0, completed=0, failed=0,
            input_tokens=0, cached_tokens=0, output_tokens=0)
        with self.store.write() as s:
            s.add(row)
        return row

    def get(self, batch_id: str, *, key_id: str | None, all_keys: bool) -> BatchRecord:
        with self.store.read() as s:
            b = s.get(BatchRecord, batch_id)
        if b is None or not (all_keys or b.key_id == key_id):
            raise _not_found(batch_id)
        return b

    def list(self, *, key_id: str | None, all_keys: bool, limit: int = 20,
             after: str | None = None) -> tuple[list[BatchRecord], bool]:
        """Newest first, as OpenAI lists batches; `after` is the last id of the previous page."""
        q = select(BatchRecord).order_by(BatchRecord.created_at.desc(), BatchRecord.id.desc())
        if not all_keys:
            q = q.where(BatchRecord.key_id.is_(None) if key_id is None else BatchRecord.key_id == key_id)
        with self.store.read() as s:
            if after:
                a = s.get(BatchRecord, after)
                if a is None:
                    raise InvalidRequest(f"No batch found with id '{after}' for 'after'.", param="after")
                q = q.where((BatchRecord.created_at < a.created_at)
                            | ((BatchRecord.created_at == a.created_at) & (BatchRecord.id < a.id)))
            rows = list(s.scalars(q.limit(limit + 1)))
        return rows[:limit], len(rows) > limit

    def cancel(self, batch_id: str, *, key_id: str | None, all_keys: bool) -> BatchRecord:
        with self.store.write() as s:
            b = s.get(BatchRecord, batch_id)
            if b is None or not (all_keys or b.key_id == key_id):
                raise _not_found(batch_id)
            if b.status in CANCELLABLE:
                b.status = "cancelling"
                b.cancelling_at = int(time.time())
            elif b.status not in ("cancelling", "cancelled"):
                raise InvalidRequest(f"Cannot cancel a batch with status '{b.status}'.", param="batch_id",
                                     code="invalid_state")
        return b
