"""The batch worker: runs each batch line through the one service pipeline, durably.

Runs inside the server process as one asyncio task. It works on one request at a time and waits
while interactive requests are in flight, so batches only use capacity that live traffic leaves.

Durability (every input line answered exactly once, across SIGKILL and restarts):
- Validation copies the input lines into `batch_lines` in one transaction.
- A line's answer, its usage row and the batch's counters commit together, and only if the line
  is still pending; a worker killed mid-line leaves it pending and it runs again after a restart.
- Output and error files are built from the rows at the end, in input order; the batch becomes
  completed (cancelled, expired) in the transaction that records those files.
- A worker holds a lease on the batch it works on (renewed at every line); another process takes
  over when the lease runs out, or at once when the holder is a dead process on this host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from typing import Any, Callable

from pydantic import ValidationError
from sqlalchemy import func, insert, select, update

from omnimini.access.context import RequestContext, opened
from omnimini.access.keys import Principal
from omnimini.access.tables import ApiKey
from omnimini.batches import formats
from omnimini.batches.service import ACTIVE
from omnimini.batches.tables import BatchLine, BatchRecord
from omnimini.metering.usage import record
from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.protocol.completions import CompletionRequest
from omnimini.protocol.embeddings import EmbeddingRequest
from omnimini.protocol.errors import APIError, Overloaded, RateLimitExceeded, error_body
from omnimini.store import Store
from omnimini.store.files import FileStore

log = logging.getLogger(__name__)

LEASE_S = 30.0            # a silent worker's batch may be taken over after this long
POLL_S = 1.0              # how often an idle worker looks for work (it is also woken on create/cancel)
BUSY_POLL_S = 0.02        # how often a yielding worker checks for the end of interactive traffic
EXPIRY_SWEEP_S = 60.0     # how often expired files are deleted
MAX_BUSY_RETRIES = 50     # a line that keeps meeting a full engine queue (429/503) fails after this many tries


def _request_types(runtime) -> dict[str, tuple[type, Callable[[Any], Any]]]:
    async def completion(req: CompletionRequest):
        return await runtime.completions.complete(await runtime.completions.prepare(req))

    return {"/v1/chat/completions": (ChatCompletionRequest, runtime.chat.create),
            "/v1/completions": (CompletionRequest, completion),
            "/v1/embeddings": (EmbeddingRequest, runtime.embeddings.create)}


def _validation_body(e: ValidationError) -> dict:
    err = e.errors()[0]
    loc = [str(x) for x in err.get("loc", ())]
    param = ".".join(loc) or None
    if err.get("type") == "extra_forbidden":
        return error_body(f"Unrecognized request argument supplied: {param}", "invalid_request_error", param,
                          "unknown_parameter")
    if err.get("type") == "missing":
        return error_body(f"Missing required parameter: '{param}'.", "invalid_request_error", param,
                          "missing_required_parameter")
    return error_body(f"Invalid value for '{param}': {err.get('msg')}.", "invalid_request_error", param,
                      "invalid_value")


def _dead(owner: str, me: str) -> bool:
    """Is the lease holder a process on this host that no longer runs?"""
    host, pid_text, token = owner.rsplit(":", 2)
    my_host, my_pid, _ = me.rsplit(":", 2)
    if host != my_host:
        return False
    pid = int(pid_text)
    if pid == int(my_pid):
        return owner != me               # an earlier life of this pid
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")     # killed, not yet reaped
    except FileNotFoundError:
        return True
    except OSError:
        return False


class LineOutcome:
    def __init__(self, ok: bool, status: int, body: dict, ctx: RequestContext | None, latency: float):
        self.ok, self.status, self.body, self.ctx, self.latency = ok, status, body, ctx, latency


class BatchWorker:
    def __init__(self, store: Store, files: FileStore, runtime, *, is_busy: Callable[[], bool] = lambda: False,
                 lease_s: float = LEASE_S, poll_s: float = POLL_S):
        self.store = store
        self.files = files
        self.types = _request_types(runtime)
        self.is_busy = is_busy
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="batch-worker")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()          # the line in flight stays pending and runs again later
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await asyncio.to_thread(self.files.sweep)
        next_expiry = 0.0
        while True:
            try:
                if time.monotonic() >= next_expiry:      # files past their expires_after
                    next_expiry = time.monotonic() + EXPIRY_SWEEP_S
                    await asyncio.to_thread(self.files.delete_expired)
                batch_id = await asyncio.to_thread(self._claim)
                if batch_id:
                    await self._process(batch_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch worker error; retrying")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.TimeoutError:
                pass

    async def run_until_idle(self) -> None:
        """Process every claimable batch, then return (for tests and the CLI)."""
        while batch_id := await asyncio.to_thread(self._claim):
            await self._process(batch_id)

    async def _process(self, batch_id: str) -> None:
        status = await asyncio.to_thread(self._status, batch_id)
        if status == "validating":
            await asyncio.to_thread(self._validate, batch_id)
        while True:
            kind, line = await asyncio.to_thread(self._next, batch_id)
            if kind != "line":
                break
            while self.is_busy():            # interactive traffic first
                await asyncio.sleep(BUSY_POLL_S)
            heartbeat = asyncio.create_task(self._heartbeat(batch_id))   # a long line keeps its lease
            try:
                outcome = await self._run_line(batch_id, line)
            finally:
                heartbeat.cancel()
            await asyncio.to_thread(self._save, batch_id, line, outcome)
        if kind == "finalize":
            await asyncio.to_thread(self._finalize, batch_id)

    async def _heartbeat(self, batch_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await asyncio.to_thread(self._renew, batch_id)

    # -- store steps (blocking; run in a thread) --------------------------------------------

    def _renew(self, batch_id: str) -> None:
        with self.store.write() as s:
            s.execute(update(BatchRecord).where(BatchRecord.id == batch_id, BatchRecord.owner == self.owner)
                      .values(lease_until=time.time() + self.lease_s))

    def _status(self, batch_id: str) -> str:
        with self.store.read() as s:
            return s.get(BatchRecord, batch_id).status

    def _claim(self) -> str | None:
        now = time.time()
        with self.store.write() as s:
            rows = s.scalars(select(BatchRecord).where(BatchRecord.status.in_(ACTIVE))
                             .order_by(BatchRecord.created_at, BatchRecord.id).with_for_update()).all()
            for b in rows:
                if (b.owner is None or b.owner == self.owner or (b.lease_until or 0) < now
                        or _dead(b.owner, self.owner)):
                    b.owner, b.lease_until = self.owner, now + self.lease_s
                    return b.id
        return None

    def _validate(self, batch_id: str) -> None:
        with self.store.read() as s:
            b = s.get(BatchRecord, batch_id)
        f = self.files.get(b.input_file_id)
        if f is None:
            return self._fail(batch_id, "file_not_found", f"The input file {b.input_file_id} no longer exists.")
        data = self.files.path(f.id).read_bytes()
        raw_lines = data.split(b"\n")
        seen: set[str] = set()
        parsed = [formats.parse_line(i, raw, b.endpoint, seen)
                  for i, raw in enumerate(raw_lines, start=1) if raw.strip()]
        if not parsed:
            return self._fail(batch_id, "empty_file", "The input file has no requests.")
        if len(parsed) > formats.MAX_LINES:
            return self._fail(batch_id, "too_many_requests",
                              f"The input file has {len(parsed)} requests; the limit is {formats.MAX_LINES}.")
        rows = []
        for p in parsed:
            result = None
            if p.error:
                result = json.dumps(formats.not_run(formats.request_id(), p.custom_id, *p.error))
            rows.append({"batch_id": batch_id, "line": p.line, "custom_id": p.custom_id,
                         "body": json.dumps(p.body) if p.body is not None else None,
                         "status": "failed" if p.error else "pending", "result": result})
        with self.store.write() as s:
            b = s.get(BatchRecord, batch_id)
            if b.status not in ("validating", "cancelling") or b.total:
                return                       # someone else validated it meanwhile
            s.execute(insert(BatchLine), rows)
            b.total = len(rows)
            b.failed = sum(r["status"] == "failed" for r in rows)
            if b.status == "validating":
                b.status, b.in_progress_at = "in_progress", int(time.time())

    def _fail(self, batch_id: str, code: str, message: str) -> None:
        with self.store.write() as s:
            b = s.get(BatchRecord, batch_id)
            b.status, b.failed_at, b.owner = "failed", int(time.time()), None
            b.errors = json.dumps([{"code": code, "message": message, "param": None, "line": None}])

    def _next(self, batch_id: str) -> tuple[str, BatchLine | None]:
        """Renew the lease and say what comes next: a pending line, finalize, or stop (lease lost)."""
        now = time.time()
        with self.store.write() as s:
            b = s.scalars(select(BatchRecord).where(BatchRecord.id == batch_id).with_for_update()).one()
            if b.owner != self.owner or b.status not in ACTIVE:
                return "lost", None
            b.lease_until = now + self.lease_s
            if b.status in ("cancelling", "finalizing"):
                return "finalize", None
            if b.expires_at is not None and now >= b.expires_at:
                b.expired_at = int(now)
                return "finalize", None
            line = s.scalars(select(BatchLine).where(BatchLine.batch_id == batch_id, BatchLine.status == "pending")
                             .order_by(BatchLine.line).limit(1)).first()
            if line is None:
                b.status, b.finalizing_at = "finalizing", int(now)
                return "finalize", None
            return "line", line

    def _save(self, batch_id: str, line: BatchLine, o: LineOutcome) -> None:
        rid = formats.request_id()
        out = formats.answered(rid, line.custom_id, o.status, rid.replace("batch_req_", "req_"), o.body)
        with self.store.write() as s:
            done = s.execute(update(BatchLine).where(BatchLine.id == line.id, BatchLine.status == "pending")
                             .values(status="done" if o.ok else "failed", result=json.dumps(out)))
            if done.rowcount != 1:
                return                        # answered already (by a worker that lost its lease)
            b = s.get(BatchRecord, batch_id)
            if o.ok:
                b.completed += 1
            else:
                b.failed += 1
            ctx = o.ctx
            if ctx is not None and ctx.spec is not None:
                b.model = b.model or ctx.spec.id
                if ctx.usage is not None:
                    b.input_tokens += ctx.usage.prompt_tokens
                    b.cached_tokens += ctx.usage.prompt_tokens_details.cached_tokens or 0
                    b.output_tokens += ctx.usage.completion_tokens
                record(s, spec=ctx.spec, usage=ctx.usage, endpoint=b.endpoint, status=o.status, key_id=b.key_id,
                       request_id=rid, batch_id=batch_id, latency_s=o.latency, interventions=ctx.interventions)

    def _finalize(self, batch_id: str) -> None:
        now = int(time.time())
        with self.store.write() as s:     # 1. decide the outcome; lines that will not run get their error
            b = s.scalars(select(BatchRecord).where(BatchRecord.id == batch_id).with_for_update()).one()
            if b.owner != self.owner or b.status not in ACTIVE:
                return
            outcome = ("cancelled" if b.status == "cancelling" else "expired" if b.expired_at else "completed")
            if outcome != "completed":
                code, message = {
                    "cancelled": ("batch_cancelled", "This request was not executed: the batch was cancelled."),
                    "expired": ("batch_expired",
                                "This request could not be executed before the completion window expired."),
                }[outcome]
                pending = s.scalars(select(BatchLine).where(BatchLine.batch_id == batch_id,
                                                            BatchLine.status == "pending")).all()
                for line in pending:
                    line.status = "failed"
                    line.result = json.dumps(formats.not_run(formats.request_id(), line.custom_id, code, message))
                b.failed += len(pending)
            if b.status == "in_progress":
                b.status, b.finalizing_at = "finalizing", now
        with self.store.read() as s:      # 2. the files, in input order
            results = s.execute(select(BatchLine.status, BatchLine.result).where(BatchLine.batch_id == batch_id)
                                .order_by(BatchLine.line)).all()
            key_id = s.get(BatchRecord, batch_id).key_id
        written = {}
        for kind, status in (("output", "done"), ("error", "failed")):
            lines = [r.result for r in results if r.status == status]
            if lines:
                data = ("\n".join(lines) + "\n").encode()
                written[kind] = (self.files.write_bytes([data]), f"{batch_id}_{kind}.jsonl")
        with self.store.write() as s:     # 3. record the files and the final status together
            b = s.scalars(select(BatchRecord).where(BatchRecord.id == batch_id).with_for_update()).one()
            if b.owner != self.owner or b.status not in ACTIVE:
                for (fid, _), _ in written.values():
                    self.files.path(fid).unlink(missing_ok=True)
                return
            for kind, ((fid, size), name) in written.items():
                self.files.add(s, fid, size, filename=name, purpose="batch_output", key_id=key_id)
                setattr(b, f"{kind}_file_id", fid)
            b.status, b.owner, b.lease_until = outcome, None, None
            setattr(b, f"{outcome}_at", now)
            if outcome == "cancelled" and not b.cancelling_at:
                b.cancelling_at = now

    # -- one line through the pipeline ------------------------------------------------------

    def _caller(self, batch_id: str) -> tuple[str, Principal | None]:
        """The batch's endpoint and the key that created it (its model list still applies)."""
        with self.store.read() as s:
            endpoint, key_id = s.execute(select(BatchRecord.endpoint, BatchRecord.key_id)
                                         .where(BatchRecord.id == batch_id)).one()
            row = s.get(ApiKey, key_id) if key_id else None
        return endpoint, Principal.of(row) if row else None

    async def _run_line(self, batch_id: str, line: BatchLine) -> LineOutcome:
        started = time.monotonic()
        endpoint, principal = await asyncio.to_thread(self._caller, batch_id)
        req_type, call = self.types[endpoint]
        try:
            req = req_type.model_validate(json.loads(line.body))
        except ValidationError as e:
            return LineOutcome(False, 400, _validation_body(e), None, 0.0)
        for _ in range(MAX_BUSY_RETRIES):
            ctx = RequestContext(principal=principal, batch=True)
            try:
                with opened(ctx):
                    response = await call(req)
                return LineOutcome(True, 200, response.model_dump(), ctx, time.monotonic() - started)
            except (RateLimitExceeded, Overloaded) as e:       # the engine's queue is full: wait our turn
                await asyncio.sleep(min(getattr(e, "retry_after", 1.0), 5.0))
            except APIError as e:
                return LineOutcome(False, e.status, e.body(), ctx, time.monotonic() - started)
            except Exception:
                log.exception("batch %s line %d failed", batch_id, line.line)
                return LineOutcome(False, 500, error_body("The server had an error while processing your request.",
                                                          "server_error"), ctx, time.monotonic() - started)
        return LineOutcome(False, 503, error_body("The server stayed busy; the request was not run.",
                                                  "server_error", None, "overloaded"), None, 0.0)


def count_lines(store: Store, batch_id: str) -> dict[str, int]:
    with store.read() as s:
        return dict(s.execute(select(BatchLine.status, func.count()).where(BatchLine.batch_id == batch_id)
                              .group_by(BatchLine.status)).all())
