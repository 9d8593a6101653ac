"""The two samplers: the in-process service (the same pipeline as the HTTP API), or any
OpenAI-compatible endpoint (our server, vLLM, OpenAI itself) through the official SDK.

Both send what simple-evals' ChatCompletionSampler sends for gpt-4o-mini: an optional system
message first, then the eval's messages, with temperature and max_tokens. A request the target
rejects as bad (4xx) gives an empty response with `error` set, which scores 0 (simple-evals returns
"No response (bad request)."); any other failure stops the run, which can then be resumed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnimini.evals.common import MAX_TOKENS, SYSTEM_MESSAGE, TEMPERATURE
from omnimini.evals.types import Message, SamplerResponse

if TYPE_CHECKING:                      # the catalog (pydantic models) loads only for the in-process
    from omnimini.models.catalog import Catalog    # sampler, so `omnimini eval --help` stays quick

HTTP_MAX_RETRIES = 5                   # the SDK backs off exponentially on 429/5xx/connection errors
# One request, its retries included, must be answered within this (the SDK's own timeout applies to
# each read, so a target that trickles a byte a second would never time out): a target that hangs
# stops the run after minutes, not after six timeouts of ten minutes each. 2048 tokens at 5 a second
# (a loaded CPU server) fit.
HTTP_TIMEOUT_S = 600.0


class BadResponse(Exception):
    """The target did not answer with a chat completion: something else, or nothing in time."""


def _count(value: object) -> int:
    """A usage count as the target reports it; anything but a non-negative integer counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _read_completion(r: object) -> SamplerResponse:
    """The text and usage of an SDK chat completion, checked: a target that answers with an HTML page,
    stream chunks or JSON of another shape is named as such instead of failing deep in the grader."""
    choices = getattr(r, "choices", None)
    if not isinstance(choices, list) or not choices:
        got = type(r).__name__ if not isinstance(r, str) else f"text: {r[:80]!r}"
        raise BadResponse(f"the target did not answer with a chat completion (no choices; got {got})")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if isinstance(content, list):         # content parts, as some servers answer: their text joined
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(getattr(p, "text", "") or "")
                          for p in content)
    if content is not None and not isinstance(content, str):
        raise BadResponse(f"the target's message content is a {type(content).__name__}, not text")
    usage = getattr(r, "usage", None)
    return SamplerResponse(text=content or "", prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
                           completion_tokens=_count(getattr(usage, "completion_tokens", 0)))


class _Base:
    def __init__(self, model: str, *, system_message: str | None = SYSTEM_MESSAGE,
                 temperature: float = TEMPERATURE, max_tokens: int = MAX_TOKENS, seed: int | None = None):
        self.name = model
        self.system_message = system_message
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed

    def body(self, messages: list[Message], sample: int = 0) -> dict[str, Any]:
        if self.system_message:
            messages = [{"role": "system", "content": self.system_message}, *messages]
        body: dict[str, Any] = {"model": self.name, "messages": messages,
                                "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.seed is not None:
            # One seed per completion: with the same seed, an example's n samples (HumanEval's pass@k)
            # would be n copies of one completion on a target that honours seeds.
            body["seed"] = self.seed + sample
        return body

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "system_message": self.system_message, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "seed": self.seed}


class LocalSampler(_Base):
    """The in-process service: omnimini.service.runtime.Runtime -> runtime.chat.create."""

    def __init__(self, model: str, *, catalog: Catalog, data_dir: Path, threads: int | None = None,
                 parallel: int = 1, **kw: Any):
        super().__init__(model, **kw)
        from omnimini.service.runtime import Runtime

        self.target = "in-process"
        self.runtime = Runtime.build(catalog, data_dir=data_dir, n_threads=threads, parallel=parallel)
        self.snapshot = self.runtime.catalog.resolve(model, "chat").id   # unknown model: ModelNotFound here

    async def __call__(self, messages: list[Message], sample: int = 0) -> SamplerResponse:
        from omnimini.protocol.chat import ChatCompletionRequest
        from omnimini.protocol.errors import APIError

        try:
            req = ChatCompletionRequest.model_validate(self.body(messages, sample))
            r = await self.runtime.chat.create(req)
        except APIError as e:
            if e.status >= 500 or e.status == 429:     # not the request's fault: stop, resume later
                raise
            return SamplerResponse(text="", error=f"{e.status}: {e}")
        usage = r.usage
        return SamplerResponse(text=r.choices[0].message.content or "",
                               prompt_tokens=usage.prompt_tokens if usage else 0,
                               completion_tokens=usage.completion_tokens if usage else 0)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "snapshot": self.snapshot}

    async def close(self) -> None:
        await self.runtime.close()


class HTTPSampler(_Base):
    """Any OpenAI-compatible endpoint through the official `openai` SDK (async, so calls overlap)."""

    def __init__(self, model: str, *, base_url: str, api_key: str, timeout: float = HTTP_TIMEOUT_S, **kw: Any):
        super().__init__(model, **kw)
        self.timeout = timeout
        try:
            import openai
        except ImportError as e:
            raise ImportError("evaluating an HTTP endpoint needs the `openai` package: pip install openai") from e
        self._openai = openai
        self.target = base_url
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=HTTP_MAX_RETRIES,
                                         timeout=HTTP_TIMEOUT_S)

    async def __call__(self, messages: list[Message], sample: int = 0) -> SamplerResponse:
        try:
            async with asyncio.timeout(self.timeout):
                r = await self.client.chat.completions.create(**self.body(messages, sample))
        except (self._openai.BadRequestError, self._openai.UnprocessableEntityError) as e:
            return SamplerResponse(text="", error=f"{e.status_code}: {e.message}")
        except TimeoutError:
            raise BadResponse(f"no answer within {self.timeout:g} s, retries included (--timeout)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:     # a body that is no JSON, or no UTF-8
            raise BadResponse(f"the target's answer is not JSON text ({type(e).__name__}: {e})") from None
        return _read_completion(r)

    async def close(self) -> None:
        await self.client.close()
