"""The instruction hierarchy on the chat pipeline (issue 7): the hooks ChatService calls.

    defended = await defend(turns, spec, catalog, engines)     # in prepare, after conversation()
    text = guard_final(guard, text)                             # complete(): per choice
    stream = guard_stream(guard)  ->  stream.feed(text) / .finish()   # stream(): per choice

The policy is the API key's (if it names one), else the model's, else `full` (hierarchy/policy.py).
Every intervention (a screened tool output, a stopped leak) is noted on the request context and so
lands in the usage row (`interventions` column) with which guard acted and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from omnimini.access.context import current, note_intervention
from omnimini.hierarchy.conversation import Turn
from omnimini.hierarchy.guard import GuardStream, LeakGuard
from omnimini.hierarchy.levels import Level
from omnimini.hierarchy.policy import Policy, choose
from omnimini.hierarchy.render import DATAMARK, closed_domain, spotlight, system_text
from omnimini.hierarchy.screen import (JAILBREAK_ANNOTATION, JAILBREAK_REFUSAL, JAILBREAK_STRIPPED, JAILBREAK_WEIGHTS,
                                       WEIGHTS, Finding, Screener)
from omnimini.models.catalog import EMBEDDED_EMBED_ALIAS, Catalog, ModelSpec
from omnimini.protocol.errors import InvalidRequest

log = logging.getLogger(__name__)


@dataclass
class Defended:
    turns: list[Turn]
    policy: Policy
    guard: LeakGuard | None
    # Tool content was datamarked, and the client's own messages have no datamark: a datamark in the
    # answer is one the model copied from the data (render.DATAMARK), and goes back to a space.
    unmark: bool = False
    # The jailbreak screen refused the latest user message: this is the answer, the model is not run.
    refusal: str | None = None


_screeners: dict[tuple[int, str], Screener] = {}
# A conversation is resent whole at every turn: the jailbreak screen's verdict on a user message is
# kept by its text, so each message is embedded once (bounded, oldest dropped first).
_user_verdicts: OrderedDict[str, Finding | None] = OrderedDict()
USER_VERDICTS_KEPT = 2048


async def _screener(catalog: Catalog, engines, weights: Path = WEIGHTS) -> Screener:
    embedder = await engines.embedder(catalog.resolve(EMBEDDED_EMBED_ALIAS, kind="embedding"))
    key = (id(embedder), str(weights))
    s = _screeners.get(key)
    if s is None:
        s = _screeners[key] = Screener(embedder, weights)
    return s


async def _jailbreak_finding(screener: Screener, text: str) -> Finding | None:
    key = f"{id(screener)}:{hashlib.sha256(text.encode()).hexdigest()}"
    if key in _user_verdicts:
        _user_verdicts.move_to_end(key)
        return _user_verdicts[key]
    top = await asyncio.to_thread(screener.verdict, text)
    _user_verdicts[key] = top
    while len(_user_verdicts) > USER_VERDICTS_KEPT:
        _user_verdicts.popitem(last=False)
    return top


async def _screen_user(turns: list[Turn], policy: Policy, catalog: Catalog, engines) -> tuple[list[Turn], str | None]:
    """The jailbreak screen on the user's messages. The latest one flagged: refused (or, under
    `annotate`, the model is told); an earlier one flagged: its text leaves the conversation, so a
    chat can go on after a refused jailbreak without carrying it."""
    users = [i for i, t in enumerate(turns) if t.level == Level.USER and t.content.strip()]
    if not users:
        return turns, None
    screener = await _screener(catalog, engines, JAILBREAK_WEIGHTS)
    out, refusal = list(turns), None
    for i in users:
        top = await _jailbreak_finding(screener, turns[i].content)
        if top is None:
            continue
        latest = i == users[-1]
        action = policy.user_screen if latest else "strip"
        note_intervention("jailbreak_screen", f"{action}: the user's message reads as a jailbreak (max score "
                          f"{top.score:.2f}): {top.text[:120]!r}", message=i)
        if action == "refuse":
            refusal = JAILBREAK_REFUSAL
        elif action == "annotate":      # into the system message: some chat templates take only one
            first = next((k for k, t in enumerate(out) if t.level == Level.SYSTEM), None)
            if first is not None:
                out[first] = dataclasses.replace(out[first], content=f"{out[first].content}\n\n{JAILBREAK_ANNOTATION}")
            else:
                out.insert(0, Turn(role="system", content=JAILBREAK_ANNOTATION, level=Level.SYSTEM))
        else:
            out[i] = dataclasses.replace(turns[i], content=JAILBREAK_STRIPPED)
    return out, refusal


def policy_for(spec: ModelSpec) -> Policy:
    ctx = current()
    key_policy = getattr(ctx.principal, "hierarchy", None) if ctx and ctx.principal else None
    return choose(getattr(spec, "hierarchy", None), key_policy)


async def _screen(turns: list[Turn], policy: Policy, catalog: Catalog, engines,
                  data_levels: tuple[Level, ...]) -> list[Turn]:
    tool_turns = [i for i, t in enumerate(turns) if t.level in data_levels and t.content.strip()]
    if not tool_turns:
        return turns
    screener = await _screener(catalog, engines)
    out = list(turns)
    for i in tool_turns:
        result = await asyncio.to_thread(screener.screen, turns[i].content, policy.screen)
        if not result.flagged:
            continue
        top = max(result.findings, key=lambda f: f.score)
        what = "a tool output" if turns[i].level == Level.TOOL else "the user's text for a closed-domain task"
        note_intervention("screen", f"{policy.screen}: {len(result.findings)} chunk(s) of {what} read as "
                          f"instructions (max score {top.score:.2f}): {top.text[:120]!r}", message=i)
        if policy.screen == "refuse":
            raise InvalidRequest(f"{what[0].upper()}{what[1:]} in this conversation contains text that reads as "
                                 "instructions to the assistant (prompt injection); the request was not run.",
                                 param=f"messages[{i}].content", code="prompt_injection_detected")
        out[i] = dataclasses.replace(turns[i], content=result.text)
    return out


async def defend(turns: list[Turn], spec: ModelSpec, catalog: Catalog, engines) -> Defended:
    policy = policy_for(spec)
    system = system_text(turns)
    guard = None
    if policy.output_guard:
        asked = next((t.content for t in reversed(turns) if t.level == Level.USER), "")
        said = "\n".join(t.content for t in turns if t.level == Level.ASSISTANT and t.content)
        guard = LeakGuard(system, user_text=asked, said_before=said)
        guard = guard if guard.active else None
    # A closed-domain task (the system prompt makes the user's text its material): that text is data.
    user_data = policy.spotlight and closed_domain(system)
    data_levels = (Level.TOOL, Level.USER) if user_data else (Level.TOOL,)
    unmark = policy.spotlight and any(t.level in data_levels for t in turns) and \
        not any(DATAMARK in t.content for t in turns if t.level != Level.TOOL)
    refusal = None
    if policy.user_screen != "off" and not user_data:     # closed-domain user text is data: screened below
        turns, refusal = await _screen_user(turns, policy, catalog, engines)
    if policy.screen != "off":
        turns = await _screen(turns, policy, catalog, engines, data_levels)
    if policy.spotlight:
        turns = spotlight(turns, user_data=user_data)
    return Defended(turns, policy, guard, unmark, refusal)


def guard_final(guard: LeakGuard | None, text: str | None, choice: int = 0) -> str | None:
    """A whole answer: itself, or the refusal when it reveals protected text."""
    if guard is None or not text:
        return text
    reason = guard.leak(text)
    if reason is None:
        return text
    note_intervention("output_guard", reason, choice=choice)
    return guard.replacement(reason)


def call_texts(arguments: str) -> str:
    """What a tool call's arguments say: the JSON text and its decoded string values (a secret may be
    written with JSON escapes, "\\u0050...")."""
    try:
        values: list[str] = []

        def walk(v: object) -> None:
            if isinstance(v, str):
                values.append(v)
            elif isinstance(v, dict):
                for k, x in v.items():
                    values.append(str(k))
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
        walk(json.loads(arguments))
        return arguments + "\n" + "\n".join(values)
    except ValueError:
        return arguments


def guard_calls(guard: LeakGuard | None, arguments: list[str], choice: int = 0) -> str | None:
    """Why the tool calls of an answer reveal protected text (their arguments go to a tool, which
    may be the attacker's: `send_email(body=<the password>)`), or None."""
    if guard is None or not arguments:
        return None
    reason = guard.leak("\n".join(call_texts(a) for a in arguments))
    if reason:
        note_intervention("output_guard", f"{reason} (tool call arguments)", choice=choice)
    return reason


def guard_logprobs(guard: LeakGuard | None, entries: list) -> list:
    """Logprobs of a guarded answer: a system prompt that declares secrets keeps the alternatives
    (top_logprobs) to itself, since the secret's tokens can sit among them even when the chosen
    tokens refuse. The chosen tokens are what the answer says, which the guard has passed."""
    if guard is None or not (guard.secrets or guard.gated):
        return entries
    return [e.model_copy(update={"top_logprobs": []}) for e in entries]


class _NoGuard:
    tripped = None

    def feed(self, piece: str) -> str:
        return piece

    def finish(self) -> str:
        return ""


class _NotingStream:
    def __init__(self, stream: GuardStream, choice: int):
        self.stream, self.choice, self.noted = stream, choice, False

    @property
    def tripped(self) -> str | None:
        return self.stream.tripped

    def feed(self, piece: str) -> str:
        out = self.stream.feed(piece)
        if self.stream.tripped and not self.noted:
            self.noted = True
            note_intervention("output_guard", self.stream.tripped, choice=self.choice, streaming=True)
        return out

    def finish(self) -> str:
        return self.stream.finish()


def guard_stream(guard: LeakGuard | None, choice: int = 0):
    return _NotingStream(guard.stream(), choice) if guard is not None else _NoGuard()
