"""The access middleware on /v1: API key -> principal (401 `invalid_api_key` when auth is on and
the key is missing or wrong), a request context for the service's admit/report hooks, OpenAI's
x-ratelimit-* headers, deprecation warnings, and one usage row per model request when it ends
(after the last byte of a stream), together with the settlement of its TPM reservation.
The arena's API (/arena/api) needs a key too when auth is on; its turns are metered through
`MeteredRequest` (one per answering model), as the routes of MODEL_ROUTES are here."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from datetime import date, datetime, timezone

from omnimini.access.context import RequestContext, opened
from omnimini.access.limits import RateLimiter
from omnimini.metering.usage import record
from omnimini.protocol.errors import error_body

log = logging.getLogger(__name__)

# The routes that run a model: they are metered, rate-limited, and make the batch worker wait.
MODEL_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/audio/speech")
# What needs a key when auth is on: the API, and the arena's API (its turns run models, votes rate them).
GUARDED_PREFIXES = ("/v1", "/arena/api")
# Body allowance for multipart framing around an uploaded file.
MULTIPART_OVERHEAD = 64 * 1024


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


async def _send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *[(k.encode(), v.encode()) for k, v in (headers or {}).items()]]})
    await send({"type": "http.response.body", "body": data})


def _masked(token: str) -> str:
    return token[:8] + "*" * 8 + token[-4:] if len(token) > 12 else "*" * len(token)


class PlatformMiddleware:
    def __init__(self, app, platform):
        self.app = app
        self.platform = platform
        self._warned: set[str] = set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIXES):
            return await self.app(scope, receive, send)
        principal = None
        if self.platform.auth:
            token = _bearer(scope.get("headers") or [])
            principal = await self.platform.store.run(self.platform.keys.verify, token) if token else None
            if principal is None:
                message = (f"Incorrect API key provided: {_masked(token)}." if token else
                           "You didn't provide an API key. You need to provide your API key in an "
                           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
                return await _send_json(send, 401, error_body(message, "invalid_request_error", None,
                                                              "invalid_api_key"),
                                        {"www-authenticate": 'Bearer realm="omnimini"'})
        scope.setdefault("state", {})["principal"] = principal
        if scope["method"] == "POST" and scope["path"] == "/v1/files":
            scope["omnimini.max_body_bytes"] = self.platform.max_file_bytes + MULTIPART_OVERHEAD
        if scope["method"] != "POST" or scope["path"] not in MODEL_ROUTES:
            return await self.app(scope, receive, send)

        ctx = RequestContext(principal=principal, limiter=self.platform.limiter)
        wall_start = time.time()
        seen = {"status": 500, "request_id": None}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                extra = {**ctx.rate_headers, **self._deprecation(ctx)}
                headers = list(message.get("headers") or [])
                for name, value in headers:
                    if name == b"x-request-id":
                        seen["request_id"] = value.decode()
                names = {n.lower() for n, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in names]
                message["headers"] = headers
            await send(message)

        self.platform.inflight += 1
        try:
            with opened(ctx):
                await self.app(scope, receive, send_with_headers)
        finally:
            self.platform.inflight -= 1
            if ctx.spec is not None:
                try:
                    await self.platform.store.run(self._finish, ctx, scope["path"], seen["status"],
                                                  seen["request_id"], wall_start)
                except Exception:
                    log.exception("could not record usage")

    def _finish(self, ctx: RequestContext, endpoint: str, status: int, request_id: str | None,
                wall_start: float) -> None:
        write_usage(self.platform, ctx, endpoint, status, request_id, wall_start)

    def _deprecation(self, ctx: RequestContext) -> dict[str, str]:
        """A deprecated snapshot: RFC 8594's Sunset header and a Warning, and one log line."""
        spec = ctx.spec
        if spec is None or not spec.shutdown_date:
            return {}
        if spec.id not in self._warned:
            self._warned.add(spec.id)
            log.warning("model %s is deprecated and shuts down on %s", spec.id, spec.shutdown_date)
        day = date.fromisoformat(spec.shutdown_date)
        sunset = email.utils.format_datetime(datetime(day.year, day.month, day.day, tzinfo=timezone.utc),
                                             usegmt=True)
        return {"sunset": sunset,
                "warning": f'299 - "The model {spec.id} is deprecated and will be shut down on '
                           f'{spec.shutdown_date}; move to a newer snapshot."'}


def write_usage(platform, ctx: RequestContext, endpoint: str, status: int, request_id: str | None,
                wall_start: float) -> None:
    """The request's usage row and the settlement of its TPM reservation, in one transaction."""
    with platform.store.write() as s:
        if ctx.admission is not None:
            RateLimiter.settle_in(s, ctx.admission, ctx.settled_tokens())
        record(s, spec=ctx.spec, usage=ctx.usage, endpoint=endpoint, status=429 if ctx.rejected else status,
               key_id=ctx.principal.key_id if ctx.principal else None, request_id=request_id,
               latency_s=time.monotonic() - ctx.started,
               created_at=ctx.admission.at if ctx.admission and ctx.admission.at else wall_start,
               interventions=ctx.interventions)


class MeteredRequest:
    """One model request made for a caller outside MODEL_ROUTES (an arena side): the same request
    context (key's models, RPM/TPM), in-flight count (the batch worker waits) and usage row as a
    /v1 model request. Open the context around the service calls with `access.context.opened`;
    `finish` (or `finish_now` where nothing can be awaited) exactly once ends it; more calls are no-ops."""

    def __init__(self, platform, principal, endpoint: str):
        self.platform = platform
        self.endpoint = endpoint
        self.ctx = RequestContext(principal=principal, limiter=platform.limiter)
        self.wall_start = time.time()
        self.closed = False
        platform.inflight += 1

    def _close(self) -> bool:
        """Leave the in-flight count; True when a usage row is due (the request reached a model)."""
        if self.closed:
            return False
        self.closed = True
        self.platform.inflight -= 1
        return self.ctx.spec is not None

    def _write(self, status: int) -> None:
        try:
            write_usage(self.platform, self.ctx, self.endpoint, status, None, self.wall_start)
        except Exception:
            log.exception("could not record usage")

    async def finish(self, status: int) -> None:
        if self._close():
            await self.platform.store.run(self._write, status)

    def finish_now(self, status: int) -> None:
        if self._close():
            self._write(status)
