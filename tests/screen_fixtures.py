"""The embedded MiniLM, loaded once per test run, behind the one method of the engine pool that the
hierarchy's screens use (`defend` asks the pool for the embedder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def minilm():
    from omnimini.engine.embedder import MiniLMEmbedder
    from omnimini.models.catalog import EMBEDDED_EMBED_SOURCE
    from omnimini.models.weights import locate
    return MiniLMEmbedder(locate(EMBEDDED_EMBED_SOURCE, Path("/nonexistent")))


class Engines:
    async def embedder(self, spec):
        return minilm()
