"""Contestants: catalog chat models (through the one chat pipeline) and OpenAI-compatible upstreams.

Both stream an answer as text pieces and end with the number of completion tokens. Pairs are drawn
with weights, never a model against itself, and the sides are shuffled.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Union

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnimini.models.catalog import Catalog
from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.service.chat import ChatService, PreparedChat

# How long an upstream may take to connect and between streamed pieces.
UPSTREAM_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    completion_tokens: int


Event = Union[Piece, Finished]


class ContestantConfig(BaseModel):
    """One entry of the arena file: a catalog model, or an upstream (base_url + model)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Catalog model (alias or snapshot), or the upstream's model name.")
    name: str | None = Field(None, description="Name on the leaderboard (default: the snapshot id, or "
                             "the upstream model name).")
    weight: float = Field(1.0, gt=0, description="Relative chance of being drawn into a battle.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1.")
    api_key: str | None = None
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")

    @model_validator(mode="after")
    def _key_needs_url(self) -> "ContestantConfig":
        if (self.api_key or self.api_key_env) and not self.base_url:
            raise ValueError(f"contestant {self.model!r}: an API key needs a base_url")
        return self


class ArenaFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contestants: list[ContestantConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class Contestant:
    name: str
    model: str
    weight: float = 1.0
    base_url: str | None = None
    api_key: str | None = None

    async def prepare(self, chat: ChatService, messages: list[dict], max_tokens: int) -> PreparedChat:
        """A catalog model's request, validated and admitted (the caller's key: models, RPM/TPM)."""
        req = ChatCompletionRequest.model_validate({"model": self.model, "messages": messages, "stream": True,
                                                    "stream_options": {"include_usage": True},
                                                    "max_tokens": max_tokens})
        return await chat.prepare(req)

    async def stream(self, chat: ChatService, messages: list[dict], max_tokens: int,
                     prepared: PreparedChat | None = None) -> AsyncIterator[Event]:
        """The answer in pieces; a catalog model's request may come `prepared` (admitted) already."""
        if self.base_url:
            async for e in self._upstream(messages, max_tokens):
                yield e
            return
        if prepared is None:
            prepared = await self.prepare(chat, messages, max_tokens)
        finish = "stop"
        async for chunk in chat.stream(prepared):
            for choice in chunk.choices:
                if choice.delta.content:
                    yield Piece(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
            if chunk.usage is not None:
                yield Finished(finish, chunk.usage.completion_tokens)

    async def _upstream(self, messages: list[dict], max_tokens: int) -> AsyncIterator[Event]:
        body = {"model": self.model, "messages": messages, "stream": True, "max_tokens": max_tokens,
                "stream_options": {"include_usage": True}}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        finish, tokens = "stop", None
        async with httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT) as client:
            async with client.stream("POST", self.base_url.rstrip("/") + "/chat/completions",
                                     json=body, headers=headers) as r:
                if r.status_code != 200:
                    text = (await r.aread()).decode(errors="replace")[:500]
                    raise RuntimeError(f"upstream answered {r.status_code}: {text}")
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise RuntimeError(f"upstream error: {chunk['error'].get('message')}")
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield Piece(text)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    if chunk.get("usage"):
                        tokens = chunk["usage"].get("completion_tokens")
        yield Finished(finish, int(tokens or 0))


def load_contestants(catalog: Catalog, arena_file: Path | None = None) -> list[Contestant]:
    """The arena file's contestants, or every chat model of the catalog with weight 1."""
    if arena_file is None:
        return [Contestant(name=s.id, model=s.id) for s in catalog.specs() if s.kind == "chat"]
    text = arena_file.read_text()
    data = json.loads(text) if arena_file.suffix == ".json" else yaml.safe_load(text)
    out: list[Contestant] = []
    for c in ArenaFile.model_validate(data or {}).contestants:
        if c.base_url:
            key = c.api_key or (os.environ.get(c.api_key_env) if c.api_key_env else None)
            out.append(Contestant(name=c.name or c.model, model=c.model, weight=c.weight, base_url=c.base_url,
                                  api_key=key))
        else:
            spec = catalog.resolve(c.model, kind="chat")
            out.append(Contestant(name=c.name or spec.id, model=spec.id, weight=c.weight))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{arena_file}: contestant names must be unique, got {names}")
    return out


def distinct(contestants: list[Contestant]) -> list[Contestant]:
    """One entry per underlying model: an alias and its snapshot are the same contestant."""
    seen: set[tuple[str | None, str]] = set()
    out = []
    for c in contestants:
        key = (c.base_url, c.model)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def draw_pair(contestants: list[Contestant], rng: random.Random) -> tuple[Contestant, Contestant]:
    """First by weight, the rival by weight among the others (as FastChat's get_battle_pair), then
    a coin decides who sits left."""
    pool = distinct(contestants)
    if len(pool) < 2:
        raise ValueError("the arena needs at least two different contestants")
    first = rng.choices(pool, weights=[c.weight for c in pool])[0]
    others = [c for c in pool if c is not first]
    second = rng.choices(others, weights=[c.weight for c in others])[0]
    return (first, second) if rng.random() < 0.5 else (second, first)
