"""GET /v1/usage: the bill as JSON, the same document as `omnimini usage --json`.

A key sees its own usage; an admin key (or no-auth mode) sees everyone's and may filter by key."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from omnimini.access.keys import KeyNotFound
from omnimini.metering.usage import as_json, parse_since, summarize
from omnimini.protocol.errors import APIError, InvalidRequest
from omnimini.server.platform import caller, platform_of

router = APIRouter()


@router.get("/v1/usage")
async def usage(request: Request, key: str | None = None, since: str | None = None, group_by: str | None = None):
    platform = platform_of(request)
    own, all_keys = caller(request)
    try:
        since_ts = parse_since(since)
    except ValueError as e:
        raise InvalidRequest(str(e), param="since") from e
    key_id = None if all_keys else own      # admins and no-auth mode: everyone, unless they pick a key
    if all_keys and key:
        try:
            key_id = (await asyncio.to_thread(platform.keys.find, key)).id
        except KeyNotFound as e:
            raise InvalidRequest(str(e), param="key") from e
    elif not all_keys and key and key != own:
        raise APIError("This key may only read its own usage.", param="key", code="insufficient_permissions",
                       status=403)
    try:
        lines = await asyncio.to_thread(summarize, platform.store, key_id=key_id, since=since_ts, group_by=group_by)
    except ValueError as e:
        raise InvalidRequest(str(e), param="group_by") from e
    return as_json(lines, group_by=group_by, key_id=key_id, since=since_ts)
