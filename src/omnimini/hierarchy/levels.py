"""Privilege as data: every message carries a level.

Following "The Instruction Hierarchy" (Wallace et al., 2024) and OpenAI's Model Spec chain of
command: system and developer messages outrank user messages, which outrank the model's own
earlier outputs, which outrank tool outputs and quoted third-party content (no authority at all).
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    TOOL = 0          # tool results, documents, anything quoted from a third party
    ASSISTANT = 1     # the model's own earlier turns
    USER = 2
    SYSTEM = 3        # system and developer messages

    @classmethod
    def of_role(cls, role: str) -> "Level":
        return ROLE_LEVELS[role]


ROLE_LEVELS = {
    "system": Level.SYSTEM,
    "developer": Level.SYSTEM,
    "user": Level.USER,
    "assistant": Level.ASSISTANT,
    "tool": Level.TOOL,
    "function": Level.TOOL,
}

# Roles as the chat template sees them. Templates know system/user/assistant/tool; developer is
# OpenAI's newer name for system-level instructions, function its deprecated name for tool.
TEMPLATE_ROLE = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
