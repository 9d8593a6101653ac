"""The one pipeline for a chat completion: request -> conversation -> prompt -> engine -> response.

HTTP routes, the CLI chat, and later the batch worker, the arena and the voice loop all call
`ChatService`. `prepare` does every check that can fail on client input, so a streaming route can
still answer with a 4xx before its first byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

import llama_cpp

from omnimini.engine.base import Engine, SamplingParams, Step, TokenInfo
from omnimini.engine.template import TemplateRenderError
from omnimini.hierarchy.conversation import conversation
from omnimini.models.catalog import Catalog, ModelSpec
from omnimini.protocol.chat import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
                                    Choice, ChoiceLogprobs, ChunkChoice, Delta, ResponseMessage,
                                    TokenLogprob, TopLogprob)
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import InvalidRequest, Unsupported
from omnimini.service.engines import Engines
from omnimini.service.ids import fingerprint, new_id, now
from omnimini.service.merge import interleave
from omnimini.service.params import (check_stream_options, completion_budget, sampling_params)


@dataclass
class PreparedChat:
    request: ChatCompletionRequest
    spec: ModelSpec
    engine: Engine
    prompt: list[int]
    params: list[SamplingParams]          # one per choice
    id: str
    created: int
    fingerprint: str

    @property
    def include_usage(self) -> bool:
        return bool(self.request.stream_options and self.request.stream_options.include_usage)


def _reject_unsupported(req: ChatCompletionRequest) -> None:
    """OpenAI parameters whose effect we cannot deliver yet: a clear 400, never silent neglect."""
    if req.tools and req.tool_choice != "none":
        raise Unsupported("Tool calling is not supported by this server yet; omit 'tools' or set "
                          "tool_choice to 'none'.", param="tools")
    if req.functions or req.function_call not in (None, "none"):
        raise Unsupported("'functions' is deprecated and not supported; use 'tools'.", param="functions")
    if req.response_format and req.response_format.type != "text":
        raise Unsupported(f"response_format type '{req.response_format.type}' is not supported yet.",
                          param="response_format")
    if req.audio is not None or (req.modalities and set(req.modalities) - {"text"}):
        raise Unsupported("Audio output is not supported by this model; use modalities ['text'].",
                          param="modalities" if req.modalities else "audio")
    for name in ("prediction", "web_search_options", "reasoning_effort", "verbosity", "moderation"):
        if getattr(req, name) is not None:
            raise Unsupported(f"Unsupported parameter: '{name}' is not supported with this model.",
                              param=name)
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")


def _logprob_entry(t: TokenInfo) -> TokenLogprob:
    return TokenLogprob(token=t.token, logprob=t.logprob, bytes=list(t.bytes),
                        top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=list(b)) for s, b, lp in t.top])


class ChatService:
    def __init__(self, catalog: Catalog, engines: Engines):
        self.catalog = catalog
        self.engines = engines

    async def prepare(self, req: ChatCompletionRequest) -> PreparedChat:
        _reject_unsupported(req)
        check_stream_options(req)
        spec = self.catalog.resolve(req.model, kind="chat")
        engine = await self.engines.chat(spec)
        turns = conversation(req.messages)
        try:
            prompt = engine.chat_tokens([t.template_dict() for t in turns])
        except TemplateRenderError as e:
            raise InvalidRequest(str(e), param="messages") from e
        budget = completion_budget(engine, len(prompt), req.completion_limit,
                                   "max_completion_tokens" if req.max_completion_tokens else "max_tokens")
        params = [sampling_params(req, engine, spec, budget, seed_offset=i, logprobs=bool(req.logprobs),
                                  top_logprobs=req.top_logprobs or 0) for i in range(req.n or 1)]
        return PreparedChat(req, spec, engine, prompt, params, new_id("chatcmpl-"), now(),
                            fingerprint(spec.id, "llama.cpp", llama_cpp.__version__))

    def _generations(self, p: PreparedChat) -> AsyncIterator[tuple[int, Step]]:
        return interleave([p.engine.generate(p.prompt, params) for params in p.params])

    async def complete(self, p: PreparedChat) -> ChatCompletion:
        n = len(p.params)
        texts = [""] * n
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        finals: list[Step | None] = [None] * n
        async for i, step in self._generations(p):
            texts[i] += step.text
            logprobs[i] += [_logprob_entry(t) for t in step.tokens]
            if step.finish_reason:
                finals[i] = step
        choices = [Choice(index=i, message=ResponseMessage(content=texts[i]),
                          logprobs=ChoiceLogprobs(content=logprobs[i]) if p.request.logprobs else None,
                          finish_reason=finals[i].finish_reason) for i in range(n)]
        return ChatCompletion(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                              usage=_usage(p, finals), system_fingerprint=p.fingerprint)

    async def stream(self, p: PreparedChat) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                                       system_fingerprint=p.fingerprint, usage=usage)

        n = len(p.params)
        for i in range(n):
            yield chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content="", refusal=None))])
        finals: list[Step | None] = [None] * n
        async for i, step in self._generations(p):
            if step.text or step.tokens:
                lp = (ChoiceLogprobs(content=[_logprob_entry(t) for t in step.tokens])
                      if p.request.logprobs else None)
                yield chunk([ChunkChoice(index=i, delta=Delta(content=step.text), logprobs=lp)])
            if step.finish_reason:
                finals[i] = step
                yield chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=step.finish_reason)])
        if p.include_usage:
            yield chunk([], usage=_usage(p, finals))

    async def create(self, req: ChatCompletionRequest) -> ChatCompletion:
        """Non-streaming convenience for in-process callers (CLI, batch worker, evals)."""
        return await self.complete(await self.prepare(req))


def _usage(p: PreparedChat, finals: list[Step | None]) -> Usage:
    # The prompt is billed once for all n choices, as OpenAI does.
    done = [f for f in finals if f is not None]
    return Usage.of(prompt=len(p.prompt), completion=sum(f.completion_tokens for f in done),
                    cached=done[0].cached_tokens if done else 0)
