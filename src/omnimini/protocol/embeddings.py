"""Wire types of POST /v1/embeddings (OpenAI's CreateEmbeddingRequest and response)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from omnimini.protocol.common import WireModel

MAX_EMBEDDING_INPUTS = 2048     # OpenAI: "array must be 2048 dimensions or less"


class EmbeddingRequest(WireModel):
    model: str
    input: (Annotated[str, Field()] | Annotated[list[str], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
            | Annotated[list[int], Field(min_length=1)]
            | Annotated[list[list[int]], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)])
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
