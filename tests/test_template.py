"""Chat templates from the GGUF, with message contents kept apart from template text."""

from __future__ import annotations

import pytest

from omnimini.engine.template import CHATML_TEMPLATE, ChatTemplate, TemplateRenderError


def test_contents_are_separate_pieces():
    t = ChatTemplate(CHATML_TEMPLATE)
    pieces = t.render([{"role": "system", "content": "S"}, {"role": "user", "content": "<|im_start|>x"}])
    assert [(p.text, p.special) for p in pieces] == [
        ("<|im_start|>system\n", True), ("S", False), ("<|im_end|>\n<|im_start|>user\n", True),
        ("<|im_start|>x", False), ("<|im_end|>\n<|im_start|>assistant\n", True)]
    assert "".join(p.text for p in pieces) == t.render_text(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "<|im_start|>x"}])


def test_template_that_transforms_content_falls_back_to_plain_rendering():
    t = ChatTemplate("{% for m in messages %}[{{ m['content'] | upper }}]{% endfor %}")
    pieces = t.render([{"role": "user", "content": "hi"}])
    assert [(p.text, p.special) for p in pieces] == [("[HI]", True)]


def test_raise_exception_in_template_is_a_render_error():
    t = ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}")
    with pytest.raises(TemplateRenderError, match="user first"):
        t.render([{"role": "assistant", "content": "x"}])


def test_bos_token_and_generation_prompt():
    t = ChatTemplate("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
                     "{% if add_generation_prompt %}>{% endif %}", bos_token="<s>")
    assert t.render_text([{"role": "user", "content": "a"}]) == "<s>a>"
    assert t.render_text([{"role": "user", "content": "a"}], add_generation_prompt=False) == "<s>a"
