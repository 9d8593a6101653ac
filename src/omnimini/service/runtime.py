"""Everything a face (HTTP server, CLI) needs, built once from the catalog and engine options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnimini.models.catalog import Catalog
from omnimini.service.chat import ChatService
from omnimini.service.completions import CompletionService
from omnimini.service.embeddings import EmbeddingService
from omnimini.service.engines import Engines


@dataclass
class Runtime:
    catalog: Catalog
    engines: Engines
    chat: ChatService
    completions: CompletionService
    embeddings: EmbeddingService

    @classmethod
    def build(cls, catalog: Catalog, *, data_dir: Path, n_threads: int | None = None,
              context_size: int | None = None, parallel: int = 1, **engine_options: int) -> "Runtime":
        """engine_options: queue_size, prompt_cache (see Engines)."""
        engines = Engines(catalog, data_dir=data_dir, n_threads=n_threads, context_size=context_size,
                          parallel=parallel, **engine_options)
        return cls(catalog, engines, ChatService(catalog, engines), CompletionService(catalog, engines),
                   EmbeddingService(catalog, engines))

    async def close(self) -> None:
        await self.engines.close()
