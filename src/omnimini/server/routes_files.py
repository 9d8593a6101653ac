"""/v1/files: upload (multipart, with a purpose), list, retrieve, content, delete (OpenAI's Files API)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from omnimini.protocol.errors import APIError, InvalidRequest, NotFound
from omnimini.server.platform import caller, platform_of
from omnimini.store.files import FileRecord, FileTooLarge

router = APIRouter()

# Purposes a client may upload with (OpenAI's CreateFileRequest); batch_output is ours to write.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_LIST = 10_000                     # OpenAI's list limit: 1..10,000
EXPIRY_RANGE = (3600, 2_592_000)      # OpenAI's FileExpirationAfter.seconds: 1 hour .. 30 days


def _get(request: Request, file_id: str) -> FileRecord:
    key_id, all_keys = caller(request)
    try:
        f = platform_of(request).files.get(file_id) if file_id.startswith("file-") else None
    except KeyError:
        f = None
    if f is None or not (all_keys or f.key_id == key_id):
        raise NotFound(f"No such File object: {file_id}", param="file_id", code="file_not_found")
    return f


@router.post("/v1/files")
async def create_file(request: Request, file: UploadFile = File(...), purpose: str = Form(...),
                      anchor: str | None = Form(None, alias="expires_after[anchor]"),
                      seconds: int | None = Form(None, alias="expires_after[seconds]")):
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(f"Invalid value for 'purpose': {purpose!r}. Supported values are: "
                             f"{', '.join(repr(p) for p in UPLOAD_PURPOSES)}.", param="purpose",
                             code="invalid_value")
    expires_at = None
    if anchor is not None or seconds is not None:
        if anchor != "created_at" or seconds is None or not EXPIRY_RANGE[0] <= seconds <= EXPIRY_RANGE[1]:
            raise InvalidRequest("'expires_after' needs anchor 'created_at' and seconds between "
                                 f"{EXPIRY_RANGE[0]} and {EXPIRY_RANGE[1]}.", param="expires_after",
                                 code="invalid_value")
        expires_at = int(time.time()) + seconds
    platform = platform_of(request)
    key_id, _ = caller(request)
    try:
        row = await asyncio.to_thread(platform.files.create, file.file, filename=file.filename or "file",
                                      purpose=purpose, key_id=key_id, max_bytes=platform.max_file_bytes,
                                      expires_at=expires_at)
    except FileTooLarge as e:
        raise APIError(f"File is too large: the limit is {e.limit} bytes.", param="file",
                       code="file_too_large", status=413) from e
    return row.wire()


@router.get("/v1/files")
async def list_files(request: Request, purpose: str | None = None,
                     limit: int = Query(MAX_LIST, ge=1, le=MAX_LIST),
                     order: Literal["asc", "desc"] = "desc", after: str | None = None):
    key_id, all_keys = caller(request)
    rows = await asyncio.to_thread(platform_of(request).files.list, key_id=key_id, all_keys=all_keys,
                                   purpose=purpose)
    if order == "desc":
        rows.reverse()
    if after:
        ids = [r.id for r in rows]
        if after not in ids:
            raise InvalidRequest(f"No such File object for 'after': {after}", param="after")
        rows = rows[ids.index(after) + 1:]
    page = rows[:limit]
    return {"object": "list", "data": [r.wire() for r in page], "has_more": len(rows) > limit,
            "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None}


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, file_id: str):
    return (await asyncio.to_thread(_get, request, file_id)).wire()


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, file_id: str):
    f = await asyncio.to_thread(_get, request, file_id)
    return FileResponse(platform_of(request).files.path(f.id), media_type="application/octet-stream",
                        filename=f.filename)


@router.delete("/v1/files/{file_id}")
async def delete_file(request: Request, file_id: str):
    f = await asyncio.to_thread(_get, request, file_id)
    deleted = await asyncio.to_thread(platform_of(request).files.delete, f.id)
    return {"id": f.id, "object": "file", "deleted": deleted}
