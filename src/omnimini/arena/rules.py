"""Which votes count: FastChat's cleaning rules (fastchat/serve/monitor/clean_battle_data.py).

- Only anonymous battles count (names shown before the vote would bias it).
- A vote is void when either conversation names a model or a vendor (IDENTITY_WORDS, FastChat's list
  plus the names of our own models and their makers, plus every contestant's name).
- A vote is void when an answer is empty or failed (FastChat lists its error banners as identity
  words for the same effect).
- A voter has a daily cap (FastChat's limit_user_votes keeps the first N votes per judge per day).
"""

from __future__ import annotations

import re
from typing import Iterable

# FastChat's IDENTITY_WORDS (clean_battle_data.py), lower-cased. Its error banners are dropped here:
# we record errors as errors and void on them directly.
FASTCHAT_IDENTITY_WORDS = (
    "vicuna", "lmsys", "koala", "uc berkeley", "open assistant", "laion", "chatglm", "chatgpt",
    "gpt-4", "openai", "anthropic", "claude", "bard", "palm", "lamda", "google", "llama", "qianwan",
    "alibaba", "mistral", "zhipu", "keg lab", "01.ai", "ai2", "tülu",
)
# The models and makers behind our catalog and common upstreams.
OWN_IDENTITY_WORDS = (
    "smollm", "hugging face", "huggingface", "qwen", "tongyi", "omnimini", "gpt-3.5", "gpt-4o",
    "gemini", "gemma", "deepseek", "phi-3", "microsoft", "meta ai",
)
IDENTITY_WORDS = FASTCHAT_IDENTITY_WORDS + OWN_IDENTITY_WORDS

# Votes per voter per UTC day that count; later votes are refused with 429.
DAILY_VOTE_CAP = 100

VOID_NOT_ANONYMOUS = "not anonymous: the model names were shown before the vote"
VOID_IDENTITY = "identity leak: the conversation names {word!r}"
VOID_EMPTY = "empty answer from model {side}"
VOID_ERROR = "failed answer from model {side}: {error}"


def identity_pattern(extra: Iterable[str] = ()) -> re.Pattern[str]:
    """Case-insensitive match of any identity word at the start of a word.

    FastChat matches plain substrings; anchoring at a word start keeps its intent ("gpt-4" still
    matches "gpt-4o", "llama" matches "llamas") without voiding "napalm" or "bombard"."""
    words = sorted({w.lower() for w in (*IDENTITY_WORDS, *extra) if w and len(w) >= 3}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + ")", re.IGNORECASE)


def void_reason(*, anonymous: bool, conversations: dict[str, list[dict]], errors: dict[str, str | None],
                pattern: re.Pattern[str]) -> str | None:
    """Why a vote on this battle must not count, or None when it counts."""
    if not anonymous:
        return VOID_NOT_ANONYMOUS
    for side in ("a", "b"):
        if errors.get(side):
            return VOID_ERROR.format(side=side.upper(), error=errors[side])
        answers = [t for t in conversations[side] if t.get("role") == "assistant"]
        if not answers or any(not str(t.get("content") or "").strip() for t in answers):
            return VOID_EMPTY.format(side=side.upper())
    for side in ("a", "b"):
        for turn in conversations[side]:
            found = pattern.search(str(turn.get("content") or ""))
            if found:
                return VOID_IDENTITY.format(word=found.group(1).lower())
    return None
