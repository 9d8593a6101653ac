"""The engine interface that the service layer uses, whatever the backend.

A backend takes a prompt (token ids) and sampling parameters and yields `Step`s asynchronously:
text deltas with their token logprobs, then a final step with the finish reason and counts. A
batching scheduler or a vLLM backend replaces the llama.cpp one behind this same interface.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable


class EngineError(RuntimeError):
    """A generation failed inside the engine (not the client's fault)."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0       # OpenAI's default
    top_p: float = 1.0
    top_k: int = 0                 # 0 = off
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None            # GBNF; output must match `root`
    grammar_trigger: str | None = None    # lazy: a regex; the grammar applies from its group 1 on


@dataclass(frozen=True)
class TokenInfo:
    """One generated token with its log probability and the top alternatives (when asked for)."""

    token: str
    bytes: tuple[int, ...]
    logprob: float
    top: tuple[tuple[str, tuple[int, ...], float], ...] = ()


@dataclass
class Step:
    """A piece of output. `text` is safe to show (no partial UTF-8, no partial stop sequence)."""

    text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    finish_reason: str | None = None        # set on the last step only: "stop" | "length"
    prompt_tokens: int = 0                  # counts, set on the last step
    cached_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Piece:
    """A segment of a rendered prompt. Template text may contain special tokens; content never does."""

    text: str
    special: bool


class Hold:
    """Room in a model's queue held for one request, from its capacity check until each of its
    generations is submitted. `release()` ends the request's claim: room not used is given back,
    and generations still queued or running are cancelled (the client is gone). The server calls
    it when a response ends, also when the client left before the answer began; a hold that is
    freed or grows old (engine) counts for nothing either."""

    def __init__(self, n: int):
        self.n = n
        self.since = time.monotonic()
        self.cancels: list[Callable[[], None]] = []      # one per submitted generation

    def release(self) -> None:
        self.n = 0
        for cancel in self.cancels:
            cancel()


class Engine(abc.ABC):
    """One loaded chat model."""

    n_ctx: int
    n_vocab: int
    # A vision projector (engine/vision.py) when the model takes images natively; None: text only.
    vision = None

    @abc.abstractmethod
    def tokenize(self, text: str, *, special: bool = False, add_bos: bool = False) -> list[int]: ...

    @abc.abstractmethod
    def detokenize(self, tokens: list[int]) -> str: ...

    @abc.abstractmethod
    def render_chat(self, messages: list[dict], *, add_generation_prompt: bool = True) -> list[Piece]:
        """Apply the model's chat template, keeping message contents apart from template text."""

    @abc.abstractmethod
    def chat_tokens(self, messages: list[dict], images: dict | None = None) -> list[int]:
        """The prompt tokens of a conversation, ready for `generate`. `images` (marker text -> RGB
        pixels) only for an engine with `vision`."""

    def encode_pieces(self, pieces: list[Piece], *, add_bos: bool) -> list[int]:
        """Tokenize template text with special tokens parsed and contents without, piece by piece."""
        tokens: list[int] = []
        for i, piece in enumerate(pieces):
            tokens += self.tokenize(piece.text, special=piece.special, add_bos=add_bos and i == 0)
        return tokens

    def check_capacity(self, generations: int = 1) -> "Hold | None":
        """Raise RateLimitExceeded (429 + Retry-After) when the queue of generations waiting for
        this model is full. Called before a response starts, so a streaming client gets a real 429.
        One request's own generations (n, best_of, prompt lists) are not refused half-way: the room
        for all `generations` is held (the Hold returned) until each is submitted to `generate`."""
        return None

    @abc.abstractmethod
    def generate(self, prompt: list[int], params: SamplingParams,
                 hold: "Hold | None" = None) -> AsyncIterator[Step]:
        """Stream the completion of `prompt`. Closing the iterator cancels the generation."""

    async def close(self) -> None:
        return None
