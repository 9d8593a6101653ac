"""Named defence policies: which run-time guards of the instruction hierarchy a request gets.

A policy is chosen per model (the catalog's `hierarchy` field) and may be overridden per API key
(`omnimini keys create --hierarchy NAME`). `full` is the default everywhere. The names match the
three columns of the evaluation report (`omnimini eval hierarchy --defences none,prompt,full`):

- `none`:   the model alone; the conversation is rendered as the client sent it.
- `prompt`: the prompt-only baseline: a system-level statement of the hierarchy and spotlighting
            (delimited, datamarked) tool content (Hines et al., 2024, "Defending Against Indirect
            Prompt Injection Attacks With Spotlighting"), nothing enforced at run time.
- `full`:   `prompt` plus the screening classifier on tool content (strip what reads as an
            instruction), the jailbreak screen on the user's messages (a message that tries to set
            aside the rules above it is refused without running the model) and the output guard on
            the token stream (system-prompt and secret leaks).
- `screen-annotate`, `screen-refuse`: `full` with the other two screening actions (a jailbreak is
            annotated for the model under `screen-annotate`, refused under `screen-refuse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from omnimini.protocol.errors import InvalidRequest

ScreenAction = Literal["off", "annotate", "strip", "refuse"]
UserScreenAction = Literal["off", "annotate", "refuse"]


@dataclass(frozen=True)
class Policy:
    name: str
    spotlight: bool            # state the hierarchy, mark lower-privilege content as data
    screen: ScreenAction       # what the screening classifier does with injected tool content
    output_guard: bool         # stop system-prompt / secret leaks in the answer
    user_screen: UserScreenAction = "off"   # what the jailbreak screen does with a user message that is one


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("none", spotlight=False, screen="off", output_guard=False),
    Policy("prompt", spotlight=True, screen="off", output_guard=False),
    Policy("full", spotlight=True, screen="strip", output_guard=True, user_screen="refuse"),
    Policy("screen-annotate", spotlight=True, screen="annotate", output_guard=True, user_screen="annotate"),
    Policy("screen-refuse", spotlight=True, screen="refuse", output_guard=True, user_screen="refuse"),
)}
DEFAULT_POLICY = "full"


def check_name(name: str) -> str:
    if name not in POLICIES:
        raise ValueError(f"unknown hierarchy policy {name!r}; choose one of {', '.join(POLICIES)}")
    return name


def choose(model_policy: str | None, key_policy: str | None) -> Policy:
    """The key's policy wins over the model's; neither set: the default (`full`)."""
    name = key_policy or model_policy or DEFAULT_POLICY
    if name not in POLICIES:       # a models file or key row with a bad name: say so, never run unguarded
        raise InvalidRequest(f"Unknown instruction-hierarchy policy {name!r} configured for this model or key.",
                             param="model")
    return POLICIES[name]
