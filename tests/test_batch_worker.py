"""The batch worker in-process on the real embedder (no llama model): it yields to interactive
traffic, expires batches past their window, takes over a dead worker's lease, and never answers a
line twice."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from sqlalchemy import select

from omnimini.batches.service import BatchService
from omnimini.batches.tables import BatchLine, BatchRecord
from omnimini.batches.worker import BatchWorker, LineOutcome, _dead
from omnimini.metering.tables import UsageRecord
from omnimini.protocol.batches import CreateBatchRequest
from omnimini.service.runtime import Runtime
from omnimini.settings import Settings
from omnimini.store import Store
from omnimini.store.files import FileStore


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("rt"))
    return Runtime.build(s.catalog(), data_dir=s.data_path)


@pytest.fixture
def parts(tmp_path, runtime):
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    files = FileStore(store, tmp_path / "files")
    return store, files, BatchService(store, files), runtime


def _batch(parts, n: int) -> str:
    store, files, batches, _ = parts
    data = "\n".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings",
                                 "body": {"model": "omnimini-embed", "input": f"text {i}"}}) for i in range(n))
    f = files.create([data.encode()], filename="in.jsonl", purpose="batch", key_id=None)
    req = CreateBatchRequest(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    return batches.create(req, key_id=None, all_keys=True).id


def _get(store: Store, batch_id: str) -> BatchRecord:
    with store.read() as s:
        return s.get(BatchRecord, batch_id)


def test_worker_yields_while_interactive_requests_run(parts):
    store, files, _, runtime = parts
    batch_id = _batch(parts, 5)
    busy = {"on": True}
    worker = BatchWorker(store, files, runtime, is_busy=lambda: busy["on"])

    async def scenario():
        task = asyncio.create_task(worker.run_until_idle())
        await asyncio.sleep(1.0)
        held = _get(store, batch_id)                 # validated, but no line ran while traffic was on
        busy["on"] = False
        await asyncio.wait_for(task, 120)
        return held

    held = asyncio.run(scenario())
    assert held.status == "in_progress" and held.completed == 0
    done = _get(store, batch_id)
    assert done.status == "completed" and done.completed == 5


def test_expired_batch_reports_the_rest_as_expired(parts):
    store, files, _, runtime = parts
    batch_id = _batch(parts, 4)
    worker = BatchWorker(store, files, runtime)
    asyncio.run(asyncio.to_thread(worker._claim))
    worker._validate(batch_id)
    with store.write() as s:
        s.get(BatchRecord, batch_id).expires_at = int(time.time()) - 1
    asyncio.run(worker.run_until_idle())
    b = _get(store, batch_id)
    assert b.status == "expired" and b.expired_at and (b.completed, b.failed, b.total) == (0, 4, 4)
    errors = [json.loads(x) for x in files.path(b.error_file_id).read_text().splitlines()]
    assert [e["error"]["code"] for e in errors] == ["batch_expired"] * 4
    assert [e["custom_id"] for e in errors] == ["r0", "r1", "r2", "r3"]


def test_a_dead_workers_lease_is_taken_over(parts):
    store, files, _, runtime = parts
    batch_id = _batch(parts, 3)
    with store.write() as s:                          # held by a process of this host that is gone
        b = s.get(BatchRecord, batch_id)
        b.owner, b.lease_until = f"{os.uname().nodename}:999999:dead", time.time() + 3600
    worker = BatchWorker(store, files, runtime)
    assert _dead(b.owner, worker.owner) and not _dead(worker.owner, worker.owner)
    assert not _dead(f"other-host:{os.getpid()}:x", worker.owner)          # another host: wait for the lease
    asyncio.run(worker.run_until_idle())
    assert _get(store, batch_id).status == "completed"


def test_a_line_is_answered_once_even_if_saved_twice(parts):
    store, files, _, runtime = parts
    batch_id = _batch(parts, 1)
    worker = BatchWorker(store, files, runtime)
    worker._claim()
    worker._validate(batch_id)
    kind, line = worker._next(batch_id)
    assert kind == "line"
    outcome = asyncio.run(worker._run_line(batch_id, line))
    worker._save(batch_id, line, outcome)
    worker._save(batch_id, line, outcome)             # a second worker that also ran it: ignored
    worker._save(batch_id, line, LineOutcome(False, 500, {"error": {}}, None, 0.0))
    b = _get(store, batch_id)
    assert (b.completed, b.failed) == (1, 0)
    with store.read() as s:
        assert len(s.scalars(select(UsageRecord).where(UsageRecord.batch_id == batch_id)).all()) == 1
        assert s.scalars(select(BatchLine.status).where(BatchLine.batch_id == batch_id)).one() == "done"


def test_the_lease_is_renewed_while_a_line_runs(parts):
    store, files, _, runtime = parts
    batch_id = _batch(parts, 1)
    worker = BatchWorker(store, files, runtime, lease_s=0.3)
    worker._claim()
    before = _get(store, batch_id).lease_until

    async def beat():
        task = asyncio.create_task(worker._heartbeat(batch_id))
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(beat())
    assert _get(store, batch_id).lease_until > before + 0.1
