"""Legacy prompt completions (POST /v1/completions) over the same engines as chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

import llama_cpp

from omnimini.access.context import admit, report
from omnimini.engine.base import Engine, Hold, SamplingParams, Step, TokenInfo
from omnimini.models.catalog import Catalog, ModelSpec
from omnimini.protocol.common import Usage, as_batch
from omnimini.protocol.completions import (Completion, CompletionChoice, CompletionRequest,
                                           LegacyLogprobs)
from omnimini.protocol.errors import InvalidRequest, Unsupported
from omnimini.service.engines import Engines
from omnimini.service.ids import fingerprint, new_id, now
from omnimini.service.merge import interleave
from omnimini.service.params import check_stream_options, completion_budget, sampling_params


@dataclass
class _Job:
    index: int            # choice index: prompt_index * n + k
    prompt: list[int]
    prompt_text: str
    params: SamplingParams


@dataclass
class PreparedCompletion:
    request: CompletionRequest
    spec: ModelSpec
    engine: Engine
    jobs: list[_Job]
    n: int                      # choices returned per prompt
    prompt_tokens: int
    id: str
    created: int
    fingerprint: str
    hold: Hold | None = None    # queue room held since admission (engine/base.py)


def _prompts(req: CompletionRequest, engine: Engine) -> list[tuple[list[int], str]]:
    items = as_batch(req.prompt)
    if not items:
        raise InvalidRequest("'prompt' must not be an empty array.", param="prompt")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            # The caller writes the whole prompt, so special tokens in it are honoured (as vLLM does).
            tokens = engine.tokenize(item, special=True, add_bos=getattr(engine, "add_bos", False))
            if not tokens:
                raise InvalidRequest("'prompt' must not be empty for this model.", param="prompt")
            out.append((tokens, item))
        else:
            if not item or any(not 0 <= t < engine.n_vocab for t in item):
                raise InvalidRequest(f"'prompt[{i}]' must be a non-empty list of token ids in "
                                     f"0..{engine.n_vocab - 1}.", param="prompt")
            out.append((list(item), engine.detokenize(list(item))))
    return out


class CompletionService:
    def __init__(self, catalog: Catalog, engines: Engines):
        self.catalog = catalog
        self.engines = engines

    async def prepare(self, req: CompletionRequest) -> PreparedCompletion:
        check_stream_options(req)
        if req.suffix is not None:
            raise Unsupported("'suffix' (insertion) is not supported by this model.", param="suffix")
        if req.echo and req.logprobs is not None:
            raise Unsupported("'echo' with 'logprobs' is not supported: prompt logprobs are not computed.",
                              param="echo")
        n = req.n or 1
        best_of = req.best_of or n
        if best_of < n:
            raise InvalidRequest("'best_of' must be greater than or equal to 'n'.", param="best_of")
        if best_of > n and req.stream:
            raise InvalidRequest("'best_of' greater than 'n' cannot be used with 'stream'.", param="best_of")
        spec = self.catalog.resolve(req.model, kind="chat")
        engine = await self.engines.chat(spec)
        jobs = []
        prompt_tokens = 0
        for pi, (tokens, text) in enumerate(_prompts(req, engine)):
            prompt_tokens += len(tokens)
            budget = completion_budget(engine, len(tokens), req.max_tokens if req.max_tokens else 16,
                                       "max_tokens", what="prompt")
            for k in range(best_of):
                params = sampling_params(req, engine, spec, budget, seed_offset=k,
                                         logprobs=req.logprobs is not None or best_of > n,
                                         top_logprobs=req.logprobs or 0)
                jobs.append(_Job(pi * best_of + k, tokens, text, params))
        hold = engine.check_capacity(len(jobs))       # queue room, held until submitted (engine/base.py)
        try:
            await admit(spec, prompt_tokens, sum(j.params.max_tokens for j in jobs))   # key's models, RPM/TPM
        except BaseException:
            if hold:
                hold.release()
            raise
        return PreparedCompletion(req, spec, engine, jobs, n, prompt_tokens, new_id("cmpl-"), now(),
                                  fingerprint(spec.id, "llama.cpp", llama_cpp.__version__), hold)

    def _run(self, p: PreparedCompletion) -> AsyncIterator[tuple[int, Step]]:
        return interleave([p.engine.generate(j.prompt, j.params, p.hold) for j in p.jobs])

    async def complete(self, p: PreparedCompletion) -> Completion:
        texts = {j.index: "" for j in p.jobs}
        tokens: dict[int, list[TokenInfo]] = {j.index: [] for j in p.jobs}
        finals: dict[int, Step] = {}
        async for i, step in self._run(p):
            index = p.jobs[i].index
            texts[index] += step.text
            tokens[index] += step.tokens
            if step.finish_reason:
                finals[index] = step
        best_of = p.request.best_of or p.n
        choices = []
        for pi in range(len(p.jobs) // best_of):
            candidates = [p.jobs[pi * best_of + k] for k in range(best_of)]
            if best_of > p.n:   # OpenAI: the n candidates with the highest log probability per token
                candidates.sort(key=lambda j: -_mean_logprob(tokens[j.index]))
            for k, job in enumerate(candidates[:p.n]):
                text = (job.prompt_text if p.request.echo else "") + texts[job.index]
                lp = _legacy_logprobs(tokens[job.index], len(job.prompt_text) if p.request.echo else 0) \
                    if p.request.logprobs is not None else None
                choices.append(CompletionChoice(index=pi * p.n + k, text=text, logprobs=lp,
                                                finish_reason=finals[job.index].finish_reason))
        return Completion(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                          system_fingerprint=p.fingerprint, usage=report(_usage(p, finals)))

    async def stream(self, p: PreparedCompletion) -> AsyncIterator[Completion]:
        def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> Completion:
            return Completion(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                              system_fingerprint=p.fingerprint, usage=usage)

        offsets = {j.index: 0 for j in p.jobs}
        if p.request.echo:
            for j in p.jobs:
                yield chunk([CompletionChoice(index=j.index, text=j.prompt_text, finish_reason=None)])
                offsets[j.index] = len(j.prompt_text)
        finals: dict[int, Step] = {}
        async for i, step in self._run(p):
            index = p.jobs[i].index
            lp = (_legacy_logprobs(step.tokens, offsets[index])
                  if p.request.logprobs is not None else None)
            offsets[index] += len(step.text)
            if step.text or step.tokens or step.finish_reason:
                yield chunk([CompletionChoice(index=index, text=step.text, logprobs=lp,
                                              finish_reason=step.finish_reason)])
            if step.finish_reason:
                finals[index] = step
        usage = report(_usage(p, finals))     # metering and the TPM settlement
        if p.request.stream_options and p.request.stream_options.include_usage:
            yield chunk([], usage=usage)


def _usage(p: PreparedCompletion, finals: dict[int, Step]) -> Usage:
    # Each prompt is billed once however many candidates it has; so is its cache hit.
    best_of = p.request.best_of or p.n
    return Usage.of(p.prompt_tokens, sum(f.completion_tokens for f in finals.values()),
                    cached=sum(f.cached_tokens for i, f in finals.items() if i % best_of == 0))


def _mean_logprob(tokens: list[TokenInfo]) -> float:
    return sum(t.logprob for t in tokens) / len(tokens) if tokens else float("-inf")


def _legacy_logprobs(tokens: list[TokenInfo], offset: int) -> LegacyLogprobs:
    out = LegacyLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
    for t in tokens:
        out.tokens.append(t.token)
        out.token_logprobs.append(t.logprob)
        out.top_logprobs.append({s: lp for s, _, lp in t.top})
        out.text_offset.append(offset)
        offset += len(t.token)
    return out
