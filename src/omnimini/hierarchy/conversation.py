"""Turn validated wire messages into the plain conversation a chat template renders.

Content parts are flattened to text here, each message keeps its privilege level, and content
types this server cannot read (files; images and audio unless service/media.py turned them into
text beforehand) are refused with a 400 that names the part, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from omnimini.hierarchy.levels import TEMPLATE_ROLE, Level
from omnimini.hierarchy.tool_format import call_text
from omnimini.protocol.chat import AssistantMessage, Message, RefusalPart, TextPart
from omnimini.protocol.errors import Unsupported

PART_JOINER = "\n"     # text parts of one message are joined by a newline, as vLLM does


@dataclass(frozen=True)
class Turn:
    role: str          # the role the template sees
    content: str
    level: Level

    def template_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class PartText:
    """The text of an audio or image part (service/media.py). level None: it belongs to the message
    that carried it (spoken words); a level: its own turn before that message (OCR of an image is
    third-party content, Level.TOOL)."""
    text: str
    level: Level | None = None


def _text_of(content: Any, where: str, media: Mapping[tuple[int, int], PartText] | None = None,
             i: int = 0, own: list[Turn] | None = None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            texts.append(part.refusal)
        elif media and (i, j) in media:
            pt = media[(i, j)]
            if pt.level is None:
                texts.append(pt.text)
            else:
                own.append(Turn(role=TEMPLATE_ROLE["tool"], content=pt.text, level=pt.level))
        else:
            raise Unsupported(
                f"Content parts of type '{part.type}' are not supported by this model yet; "
                "send text parts only.", param=f"{where}.content[{j}]")
    return PART_JOINER.join(texts)


def conversation(messages: Sequence[Message],
                 media: Mapping[tuple[int, int], PartText] | None = None) -> list[Turn]:
    turns: list[Turn] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        text = _text_of(m.content, where, media, i, turns)
        if media and (i, -1) in media and not text:       # an assistant audio reply sent back by id
            text = media[(i, -1)].text
        if isinstance(m, AssistantMessage):
            if m.refusal and not text:
                text = m.refusal
            calls = [call_text(c.function.name, c.function.arguments) for c in (m.tool_calls or [])]
            if m.function_call:
                calls.append(call_text(m.function_call.name, m.function_call.arguments))
            if calls:
                text = (text + PART_JOINER if text else "") + "\n".join(calls)
        turns.append(Turn(role=TEMPLATE_ROLE[m.role], content=text, level=Level.of_role(m.role)))
    return turns
