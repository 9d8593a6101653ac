"""Wire types of POST /v1/chat/completions (OpenAI's CreateChatCompletionRequest and responses)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag

from omnimini.protocol.common import (MAX_TOP_LOGPROBS, FinishReason, SamplingFields, Usage,
                                      WireModel)

# ---------------------------------------------------------------- content parts


class TextPart(WireModel):
    type: Literal["text"]
    text: str


class ImageURL(WireModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(WireModel):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(WireModel):
    data: str
    format: str


class AudioPart(WireModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(WireModel):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(WireModel):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[Union[TextPart, ImagePart, AudioPart, FilePart], Field(discriminator="type")]
AssistantPart = Annotated[Union[TextPart, RefusalPart], Field(discriminator="type")]

# ---------------------------------------------------------------- messages


class FunctionCall(WireModel):
    name: str
    arguments: str


class ToolCall(WireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(WireModel):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(WireModel):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(WireModel):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(WireModel):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(WireModel):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(WireModel):
    role: Literal["function"]
    content: str | None
    name: str


def _role(v: Any) -> str | None:
    return v.get("role") if isinstance(v, dict) else getattr(v, "role", None)


Message = Annotated[
    Union[
        Annotated[SystemMessage, Tag("system")],
        Annotated[DeveloperMessage, Tag("developer")],
        Annotated[UserMessage, Tag("user")],
        Annotated[AssistantMessage, Tag("assistant")],
        Annotated[ToolMessage, Tag("tool")],
        Annotated[FunctionMessage, Tag("function")],
    ],
    Discriminator(_role, custom_error_type="invalid_role",
                  custom_error_message="Invalid value for 'role': supported values are 'system', "
                  "'developer', 'user', 'assistant', 'tool' and 'function'."),
]

# ---------------------------------------------------------------- request


class ResponseFormat(WireModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    response_format: ResponseFormat | None = None
    # OpenAI parameters that we accept; the service rejects the values it cannot honour yet.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    moderation: Any = None
    # Accepted and recorded-or-ignored, as they do not change the output.
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: Any = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# ---------------------------------------------------------------- responses


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    annotations: list[Any] = Field(default_factory=list)


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    service_tier: str = "default"
    system_fingerprint: str


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None

    def wire(self) -> dict[str, Any]:
        # Only the fields that were set: OpenAI's first delta carries role, "" content and a null
        # refusal; later ones carry only content; the finishing one is empty.
        return self.model_dump(exclude_unset=True)


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    service_tier: str = "default"
    system_fingerprint: str
    usage: Usage | None = None

    def wire(self, include_usage_field: bool) -> dict[str, Any]:
        d = self.model_dump(exclude={"choices", "usage"})
        d["choices"] = [{**c.model_dump(exclude={"delta"}), "delta": c.delta.wire()}
                        for c in self.choices]
        if include_usage_field:
            d["usage"] = self.usage.model_dump() if self.usage else None
        return d
