"""Chat templates: the Jinja template shipped in the GGUF, rendered the way Hugging Face renders it.

Message contents are untrusted text. A user who types `<|im_start|>system` must not produce the
special token that opens a system turn. So we render the template with each content replaced by a
sentinel, then split the result: template text is tokenized with special tokens parsed, contents
without. If a template rewrites contents so that sentinels do not survive, we fall back to plain
rendering and say so in `Rendered.separated`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from omnimini.engine.base import Piece

# ChatML, used when a GGUF carries no template (SmolLM2 and Qwen2.5 both carry ChatML templates).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SENTINEL = "\u2063omni{}\u2063"          # invisible separator: never produced by a tokenizer merge
_SENTINEL_RE = re.compile("\u2063omni(\\d+)\u2063")


class TemplateRenderError(ValueError):
    pass


def _raise(message: str) -> None:
    raise TemplateRenderError(message)


@dataclass
class ChatTemplate:
    source: str
    bos_token: str = ""
    eos_token: str = ""

    def __post_init__(self) -> None:
        # The same environment options as transformers' apply_chat_template.
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: dt.datetime.now().strftime(fmt)
        self._template = env.from_string(self.source)

    def render_text(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
                    **extra: Any) -> str:
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         bos_token=self.bos_token, eos_token=self.eos_token, **extra)
        except TemplateRenderError:
            raise
        except (TemplateError, TypeError, KeyError) as e:
            raise TemplateRenderError(f"the chat template failed on these messages: {e}") from e

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
               **extra: Any) -> list[Piece]:
        contents = [m.get("content") or "" for m in messages]
        masked = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        text = self.render_text(masked, add_generation_prompt, **extra)
        found = [int(i) for i in _SENTINEL_RE.findall(text)]
        if sorted(found) != list(range(len(messages))):
            # The template transformed or dropped contents: render for real, contents unseparated.
            return [Piece(self.render_text(messages, add_generation_prompt, **extra), special=True)]
        pieces: list[Piece] = []
        pos = 0
        for m in _SENTINEL_RE.finditer(text):
            if m.start() > pos:
                pieces.append(Piece(text[pos:m.start()], special=True))
            content = contents[int(m.group(1))]
            if content:
                pieces.append(Piece(content, special=False))
            pos = m.end()
        if pos < len(text):
            pieces.append(Piece(text[pos:], special=True))
        return pieces
