"""Request fields and response pieces shared by chat completions and legacy completions.

Limits below are OpenAI's published ones (API reference, CreateChatCompletionRequest).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP_SEQUENCES = 4          # "Up to 4 sequences where the API will stop generating"
MAX_N = 128                     # OpenAI rejects n > 128
MAX_TOP_LOGPROBS = 20           # chat: top_logprobs is 0..20
MAX_LEGACY_LOGPROBS = 5         # legacy completions: logprobs is 0..5
LOGIT_BIAS_RANGE = (-100.0, 100.0)
PENALTY_RANGE = (-2.0, 2.0)


class WireModel(BaseModel):
    """Requests reject unknown fields, as OpenAI does ("Unrecognized request argument supplied")."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StreamOptions(WireModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class SamplingFields(WireModel):
    """The sampling parameters common to /chat/completions and /completions."""

    model: str
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    n: Annotated[int, Field(ge=1, le=MAX_N)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1])] | None = None
    frequency_penalty: Annotated[float, Field(ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1])] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=LOGIT_BIAS_RANGE[0], le=LOGIT_BIAS_RANGE[1])]] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Extensions that llama.cpp's server and vLLM also accept; OpenAI has no equivalent.
    top_k: Annotated[int, Field(ge=0)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        stops = [v] if isinstance(v, str) else list(v)
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        if any(s == "" for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops or None

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return None
        for key in v:
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
        return v


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0
    audio_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(default_factory=CompletionTokensDetails)

    @classmethod
    def of(cls, prompt: int, completion: int, cached: int = 0) -> "Usage":
        return cls(prompt_tokens=prompt, completion_tokens=completion,
                   total_tokens=prompt + completion,
                   prompt_tokens_details=PromptTokensDetails(cached_tokens=cached))


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


def as_batch(value: Any) -> list[Any]:
    """OpenAI's batchable inputs (`prompt`, `input`): a string or one token-id list is a batch of
    one; a list of strings or of token-id lists is the batch itself."""
    if isinstance(value, str) or (value and all(isinstance(x, int) for x in value)):
        return [value]
    return list(value)
