"""Embeddings (POST /v1/embeddings) with the embedded MiniLM model."""

from __future__ import annotations

import asyncio
import base64

import numpy as np

from omnimini.access.context import admit, report
from omnimini.models.catalog import Catalog
from omnimini.protocol.common import Usage, as_batch
from omnimini.protocol.embeddings import Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage
from omnimini.protocol.errors import InvalidRequest
from omnimini.service.engines import Engines


class EmbeddingService:
    def __init__(self, catalog: Catalog, engines: Engines):
        self.catalog = catalog
        self.engines = engines

    async def create(self, req: EmbeddingRequest) -> EmbeddingList:
        spec = self.catalog.resolve(req.model, kind="embedding")
        embedder = await self.engines.embedder(spec)
        items = as_batch(req.input)
        texts: list[str] = []
        vocab = embedder.tokenizer.get_vocab_size()
        for i, item in enumerate(items):
            if isinstance(item, str):
                if not item:
                    raise InvalidRequest(f"'input[{i}]' must not be an empty string.", param="input")
                texts.append(item)
            else:
                # Token arrays are ids of this model's own vocabulary.
                if not item or any(not 0 <= t < vocab for t in item):
                    raise InvalidRequest(f"'input[{i}]' must be a non-empty list of token ids in "
                                         f"0..{vocab - 1}.", param="input")
                texts.append(embedder.tokenizer.decode(item))
        if req.dimensions is not None and req.dimensions != embedder.dimensions:
            raise InvalidRequest(f"This model has {embedder.dimensions} dimensions and does not support "
                                 f"'dimensions' = {req.dimensions}.", param="dimensions")
        ids = embedder.encode_ids(texts)
        tokens = sum(len(x) for x in ids)
        await admit(spec, tokens, 0)          # key's models, RPM/TPM
        vectors = await asyncio.to_thread(embedder.embed_ids, ids)
        report(Usage.of(tokens, 0))
        data = [Embedding(index=i, embedding=_encode(v, req.encoding_format)) for i, v in enumerate(vectors)]
        return EmbeddingList(data=data, model=spec.id,
                             usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


def _encode(vector: np.ndarray, fmt: str | None) -> list[float] | str:
    if fmt == "base64":      # little-endian float32, what the openai SDK decodes
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.astype(float).tolist()
