"""Everything a face (HTTP server, CLI) needs, built once from the catalog and engine options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnimini.models.catalog import Catalog
from omnimini.service.chat import ChatService
from omnimini.service.completions import CompletionService
from omnimini.service.embeddings import EmbeddingService
from omnimini.service.engines import Engines
from omnimini.service.audio_reply import AudioReply
from omnimini.service.media import MediaReader
from omnimini.service.speech import Speech


@dataclass
class Runtime:
    catalog: Catalog
    engines: Engines
    chat: ChatService
    completions: CompletionService
    embeddings: EmbeddingService
    speech: Speech | None = None      # Whisper and Piper, loaded on first use (issue 9)

    @classmethod
    def build(cls, catalog: Catalog, *, data_dir: Path, n_threads: int | None = None,
              context_size: int | None = None, parallel: int = 1, **engine_options: int) -> "Runtime":
        """engine_options: queue_size, prompt_cache, load_invariant (see Engines)."""
        engines = Engines(catalog, data_dir=data_dir, n_threads=n_threads, context_size=context_size,
                          parallel=parallel, **engine_options)
        speech = Speech(catalog, data_dir, n_threads or 2)
        chat = ChatService(catalog, engines)
        chat.audio_reply = AudioReply(speech)                                      # issue 9
        chat.media = MediaReader(speech, chat.audio_reply.transcripts)
        return cls(catalog, engines, chat, CompletionService(catalog, engines),
                   EmbeddingService(catalog, engines), speech)

    async def close(self) -> None:
        await self.engines.close()
