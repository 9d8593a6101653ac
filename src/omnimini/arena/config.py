"""Arena settings (OMNIMINI_ARENA_* environment variables) and building the arena of a server."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnimini.arena.contestants import load_contestants
from omnimini.arena.rules import DAILY_VOTE_CAP
from omnimini.arena.service import MAX_ANSWER_TOKENS, Arena
from omnimini.models.catalog import Catalog
from omnimini.service.chat import ChatService
from omnimini.store import Store


class ArenaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNIMINI_ARENA_", extra="ignore")

    file: Path | None = Field(None, description="YAML/JSON file listing the contestants (catalog models "
                              "and OpenAI-compatible upstreams, with weights). Default: every catalog chat model.")
    daily_vote_cap: int = Field(DAILY_VOTE_CAP, ge=1, description="Votes per voter per UTC day.")
    max_tokens: int = Field(MAX_ANSWER_TOKENS, ge=1, le=MAX_ANSWER_TOKENS,
                            description="Longest answer per turn, in tokens.")


def build_arena(catalog: Catalog, chat: ChatService, store: Store, settings: ArenaSettings | None = None) -> Arena:
    s = settings or ArenaSettings()
    return Arena(store, chat, load_contestants(catalog, s.file), daily_vote_cap=s.daily_vote_cap,
                 max_tokens=s.max_tokens)
