"""The token-count answer, shaped as OpenAI's `POST /v1/responses/input_tokens` answers
(openapi.yaml: `object: response.input_tokens`, `input_tokens`), for a chat completion request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class InputTokenCount(BaseModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int
