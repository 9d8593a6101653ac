"""Wire types of the Batch API (OpenAI's CreateBatchRequest)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from omnimini.protocol.common import WireModel

MAX_METADATA_PAIRS = 16         # OpenAI's Metadata: "up to 16 key-value pairs"
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


class ExpiresAfter(WireModel):
    anchor: Literal["created_at"]
    seconds: Annotated[int, Field(ge=3600, le=2592000)]


class CreateBatchRequest(WireModel):
    input_file_id: str
    endpoint: str                       # checked against what we support, with a clear message
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_after: ExpiresAfter | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            if len(v) > MAX_METADATA_PAIRS:
                raise ValueError(f"at most {MAX_METADATA_PAIRS} key-value pairs")
            if any(len(k) > MAX_METADATA_KEY or len(x) > MAX_METADATA_VALUE for k, x in v.items()):
                raise ValueError(f"keys are at most {MAX_METADATA_KEY} characters and values "
                                 f"at most {MAX_METADATA_VALUE}")
        return v
