"""The small interface everything plugs into, after simple-evals' `types.py`.

A `Sampler` turns a message list into a response; an `Eval` knows its examples, the prompt for one,
and how to grade the responses. The runner (runner.py) connects them, stores every graded sample
as it completes, and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

Message = dict[str, str]


@dataclass
class SamplerResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None          # set when the target refused the request (a 4xx); text is then ""


class Sampler(Protocol):
    """Anything that answers a chat: the in-process service or an OpenAI-compatible endpoint."""

    name: str                          # the model, as the target names it

    async def __call__(self, messages: list[Message], sample: int = 0) -> SamplerResponse:
        """`sample`: which of an example's completions this is (HumanEval draws several)."""
        ...

    async def close(self) -> None: ...


@dataclass
class Example:
    id: str                            # stable across runs: the key for resuming
    data: dict[str, Any]


@dataclass
class Graded:
    """The outcome for one example: what we extracted from the response(s) and the score."""

    score: float
    extracted: Any
    correct: Any
    metrics: dict[str, float] = field(default_factory=dict)   # category -> score, pass@k, ...
    details: Any = None                                       # e.g. sandbox results per completion


class Eval(Protocol):
    name: str
    samples_per_example: int           # responses drawn per example (HumanEval's n for pass@k)
    available: int                     # examples in the full set (set by load, before --limit)

    def load(self, data_dir: Path | None, cache_dir: Path, limit: int | None) -> list[Example]: ...

    def prompt(self, example: Example) -> list[Message]: ...

    def grade(self, example: Example, responses: list[str]) -> Graded: ...
