"""Loaded models: one engine per snapshot, loaded on first use (or at start-up) and kept."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from omnimini.engine.base import Engine, EngineError
from omnimini.engine.embedder import MiniLMEmbedder
from omnimini.engine.llama import DEFAULT_MAX_QUEUE, DEFAULT_PROMPT_CACHE, LlamaEngine
from omnimini.models.catalog import Catalog, ModelSpec
from omnimini.models.weights import WeightsNotFound, locate
from omnimini.protocol.errors import ServerError

log = logging.getLogger(__name__)


class Engines:
    def __init__(self, catalog: Catalog, *, data_dir: Path, n_threads: int | None = None,
                 context_size: int | None = None, parallel: int = 1, queue_size: int = DEFAULT_MAX_QUEUE,
                 prompt_cache: int = DEFAULT_PROMPT_CACHE, load_invariant: bool = True):
        self.catalog = catalog
        self.data_dir = data_dir
        self.n_threads = n_threads
        self.context_size = context_size
        self.parallel = parallel
        self.queue_size = queue_size
        self.prompt_cache = prompt_cache
        self.load_invariant = load_invariant
        self._chat: dict[str, Engine] = {}
        self._embed: dict[str, MiniLMEmbedder] = {}
        self._lock = asyncio.Lock()

    def _path(self, spec: ModelSpec, source: str | None = None) -> Path:
        """Where the weights of `spec` are (or its projector's, `source`), fetched if need be."""
        try:
            return locate(source or spec.source, self.data_dir / "models")
        except WeightsNotFound as e:
            raise ServerError(f"The weights of model `{spec.id}` are not available: {e}",
                              code="model_unavailable") from e

    def load_chat(self, spec: ModelSpec) -> Engine:
        """Blocking load; call from a thread or at start-up."""
        engine = self._chat.get(spec.id)
        if engine is None:
            n_ctx = min(spec.context_length, self.context_size or spec.context_length)
            log.info("loading %s (n_ctx=%d)", spec.id, n_ctx)
            try:
                engine = LlamaEngine(self._path(spec), n_ctx=n_ctx, n_threads=self.n_threads,
                                     chat_template=spec.chat_template, slots=self.parallel,
                                     max_queue=self.queue_size, prompt_cache=self.prompt_cache,
                                     load_invariant=self.load_invariant,
                                     mmproj=self._path(spec, spec.mmproj) if spec.mmproj else None)
            except EngineError as e:         # a configuration the operator must fix (a wrong mmproj...)
                raise ServerError(f"The model `{spec.id}` could not be loaded: {e}",
                                  code="model_unavailable") from e
            self._chat[spec.id] = engine
        return engine

    def load_embedder(self, spec: ModelSpec) -> MiniLMEmbedder:
        embedder = self._embed.get(spec.id)
        if embedder is None:
            embedder = self._embed[spec.id] = MiniLMEmbedder(self._path(spec))
        return embedder

    async def chat(self, spec: ModelSpec) -> Engine:
        if spec.id in self._chat:
            return self._chat[spec.id]
        async with self._lock:
            return await asyncio.to_thread(self.load_chat, spec)

    async def embedder(self, spec: ModelSpec) -> MiniLMEmbedder:
        if spec.id in self._embed:
            return self._embed[spec.id]
        async with self._lock:
            return await asyncio.to_thread(self.load_embedder, spec)

    async def close(self) -> None:
        for engine in self._chat.values():
            await engine.close()
        self._chat.clear()
