"""Server-sent events exactly as OpenAI streams them: `data: {json}` lines, then `data: [DONE]`."""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Callable

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from omnimini.protocol.errors import APIError, error_body

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _frames(payloads: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for payload in payloads:
            yield _event(payload)
    except APIError as e:              # the status line is sent already: report in-band, as OpenAI does
        yield _event(e.body())
    except Exception:
        log.exception("stream failed")
        yield _event(error_body("The server had an error while processing your request.", "server_error"))
    yield b"data: [DONE]\n\n"


def sse_response(payloads: AsyncIterator[dict[str, Any]],
                 on_close: Callable[[], None] | None = None) -> StreamingResponse:
    """on_close runs when the response has ended, also when the client left mid-stream."""
    return StreamingResponse(_frames(payloads), media_type="text/event-stream", headers=SSE_HEADERS,
                             background=BackgroundTask(on_close) if on_close else None)
