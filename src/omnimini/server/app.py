"""The HTTP face: OpenAI's routes, each a few lines that hand off to the service layer."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from omnimini import __version__
from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.protocol.completions import CompletionRequest
from omnimini.protocol.embeddings import EmbeddingRequest
from omnimini.protocol.models import ModelList
from omnimini.server import errors
from omnimini.server.limits import DEFAULT_MAX_REQUEST_BYTES, BodyLimitAndRequestId
from omnimini.server.sse import sse_response
from omnimini.service.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, preload: list[str] | None = None,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, platform: Any = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name in preload or []:
            spec = runtime.catalog.resolve(name)
            if spec.kind == "chat":
                await runtime.engines.chat(spec)
            else:
                await runtime.engines.embedder(spec)
        yield
        await runtime.close()

    app = FastAPI(title="omnimini", version=__version__, lifespan=lifespan)
    errors.install(app)
    app.add_middleware(BodyLimitAndRequestId, max_bytes=max_request_bytes)
    app.state.runtime = runtime

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return ModelList(data=runtime.catalog.wire_all()).model_dump()

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> dict[str, Any]:
        return runtime.catalog.wire(model_id).model_dump()

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest):
        prepared = await runtime.chat.prepare(req)
        if not req.stream:
            return JSONResponse((await runtime.chat.complete(prepared)).model_dump())
        include_usage = prepared.include_usage
        # the queue room held since admission is given back even if the client leaves before
        # the answer starts (engine/base.py Hold)
        return sse_response((c.wire(include_usage) async for c in runtime.chat.stream(prepared)),
                            on_close=prepared.hold.release if prepared.hold else None)

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        prepared = await runtime.completions.prepare(req)
        if not req.stream:
            return JSONResponse((await runtime.completions.complete(prepared)).model_dump())
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return sse_response((c.model_dump(exclude=None if include_usage else {"usage"})
                             async for c in runtime.completions.stream(prepared)),
                            on_close=prepared.hold.release if prepared.hold else None)

    @app.post("/v1/embeddings")
    async def embeddings(req: EmbeddingRequest):
        return JSONResponse((await runtime.embeddings.create(req)).model_dump())

    from omnimini.server.routes_tokens import router as tokens_router  # token counting (issue 10)
    app.include_router(tokens_router)
    from omnimini.server.routes_arena import router as arena_router  # arena pages and votes (issue 8)
    app.include_router(arena_router)
    from omnimini.server.routes_audio import install as install_audio  # audio, voice, images (issue 9)
    install_audio(app)
    if platform is not None:   # store, keys, rate limits, usage, files, batches (issue 5): server/platform.py
        from omnimini.server.platform import install
        install(app, platform)
    return app
