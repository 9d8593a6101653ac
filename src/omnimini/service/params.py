"""From request fields to engine sampling parameters, with the checks that need the model:
context length, token ids in logit_bias, and the OpenAI defaults for everything left unset."""

from __future__ import annotations

from omnimini.engine.base import Engine, SamplingParams
from omnimini.models.catalog import ModelSpec
from omnimini.protocol.common import SamplingFields
from omnimini.protocol.errors import ContextLengthExceeded, InvalidRequest

def completion_budget(engine: Engine, prompt_len: int, requested: int | None, param: str,
                      what: str = "messages") -> int:
    """Tokens left for the completion; a 400 `context_length_exceeded` when nothing fits."""
    if prompt_len >= engine.n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {engine.n_ctx} tokens. However, your {what} "
            f"resulted in {prompt_len} tokens. Please reduce the length of the {what}.",
            param="messages" if what == "messages" else "prompt")
    if requested is None:
        return engine.n_ctx - prompt_len
    if prompt_len + requested > engine.n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {engine.n_ctx} tokens. However, you requested "
            f"{prompt_len + requested} tokens ({prompt_len} in the {what}, {requested} in the "
            f"completion). Please reduce the length of the {what} or completion.", param=param)
    return requested


def sampling_params(req: SamplingFields, engine: Engine, spec: ModelSpec, max_tokens: int, *,
                    seed_offset: int = 0, logprobs: bool = False, top_logprobs: int = 0) -> SamplingParams:
    """Unset temperature/top_p take the model's defaults (OpenAI's 1.0 unless the catalog says)."""
    bias: list[tuple[int, float]] = []
    for key, value in (req.logit_bias or {}).items():
        token = int(key)
        if not 0 <= token < engine.n_vocab:
            raise InvalidRequest(f"Invalid key in 'logit_bias': {key} is not a token id of this model "
                                 f"(0..{engine.n_vocab - 1}).", param="logit_bias")
        bias.append((token, value))
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=spec.temperature if req.temperature is None else req.temperature,
        top_p=spec.top_p if req.top_p is None else req.top_p,
        top_k=req.top_k or 0,
        min_p=req.min_p or 0.0,
        seed=None if req.seed is None else req.seed + seed_offset,
        stop=tuple(req.stop or ()),
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logit_bias=tuple(bias),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
    )


def check_stream_options(req: SamplingFields) -> None:
    if req.stream_options is not None and not req.stream:
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                             param="stream_options")
