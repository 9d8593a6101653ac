"""Request-level guards that sit in front of every route: a cap on the request body (a 1 GB JSON
body must not be read into memory before anything can say no) and an `x-request-id` on every
response, as OpenAI sends one."""

from __future__ import annotations

import json
import secrets

from omnimini.protocol.errors import error_body

# OpenAI caps request bodies too; 16 MiB is ample for text (a full 8k-token context is ~40 KB).
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class BodyLimitAndRequestId:
    """Pure ASGI middleware (no buffering of streamed responses)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = "req_" + secrets.token_hex(16)

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        # An outer middleware may raise the cap for one route (file uploads: server/access.py).
        max_bytes = scope.get("omnimini.max_body_bytes", self.max_bytes)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            return await self._too_large(send_with_id, max_bytes)
        # Read the body here, up to the cap (also for chunked uploads without a length), and replay
        # it to the app; FastAPI would buffer it whole anyway.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return                      # the client went away before sending its body
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > max_bytes:
                return await self._too_large(send_with_id, max_bytes)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()          # later: disconnect notifications while streaming

        await self.app(scope, replay, send_with_id)

    async def _too_large(self, send, max_bytes: int):
        body = json.dumps(error_body(f"The request body is larger than the limit of {max_bytes} bytes.",
                                     "invalid_request_error", None, "request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
