"""/v1/batches: create, retrieve, list, cancel (OpenAI's Batch API). The work runs in the batch worker."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request

from omnimini.batches.service import wire
from omnimini.protocol.batches import CreateBatchRequest
from omnimini.server.platform import caller, platform_of

router = APIRouter()


@router.post("/v1/batches")
async def create_batch(request: Request, req: CreateBatchRequest):
    platform = platform_of(request)
    key_id, all_keys = caller(request)
    row = await asyncio.to_thread(platform.batches.create, req, key_id=key_id, all_keys=all_keys)
    platform.wake_worker()
    return wire(row)


@router.get("/v1/batches")
async def list_batches(request: Request, limit: int = Query(20, ge=1, le=100), after: str | None = None):
    key_id, all_keys = caller(request)
    rows, more = await asyncio.to_thread(platform_of(request).batches.list, key_id=key_id, all_keys=all_keys,
                                         limit=limit, after=after)
    return {"object": "list", "data": [wire(b) for b in rows], "has_more": more,
            "first_id": rows[0].id if rows else None, "last_id": rows[-1].id if rows else None}


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str):
    key_id, all_keys = caller(request)
    return wire(await asyncio.to_thread(platform_of(request).batches.get, batch_id, key_id=key_id,
                                        all_keys=all_keys))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str):
    platform = platform_of(request)
    key_id, all_keys = caller(request)
    row = await asyncio.to_thread(platform.batches.cancel, batch_id, key_id=key_id, all_keys=all_keys)
    platform.wake_worker()
    return wire(row)
