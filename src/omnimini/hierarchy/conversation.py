"""Turn validated wire messages into the plain conversation a chat template renders.

Content parts are flattened to text here, each message keeps its privilege level, and content
types this server cannot read yet (images, audio, files) are refused with a 400 that names the
part, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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


def _text_of(content: Any, where: str) -> str:
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
        else:
            raise Unsupported(
                f"Content parts of type '{part.type}' are not supported by this model yet; "
                "send text parts only.", param=f"{where}.content[{j}]")
    return PART_JOINER.join(texts)


def conversation(messages: Sequence[Message]) -> list[Turn]:
    turns = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        text = _text_of(m.content, where)
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
