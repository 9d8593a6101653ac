"""Parsing tool calls out of the model's output, whole or in arbitrary stream fragments."""

from __future__ import annotations

import json

import pytest

from omnimini.hierarchy.tool_format import call_text
from omnimini.service.tools import CallParser

TWO_CALLS = (call_text("get_weather", '{"city": "Paris", "days": [1, 2]}') + "\n"
             + call_text("lookup", '{"q": "a \\"quoted\\" {brace}"}'))


def _feed(parser: CallParser, text: str, step: int) -> tuple[str, dict[int, dict]]:
    """Feed `text` in pieces of `step` characters, as a stream would; the content, and the calls as
    the openai SDK reassembles streamed deltas."""
    content, calls = "", {}
    pieces = [parser.feed(text[i:i + step]) for i in range(0, len(text), step)] + [parser.finish()]
    for c, events in pieces:
        content += c
        for e in events:
            call = calls.setdefault(e.index, {"id": None, "name": None, "arguments": ""})
            if e.id:
                assert call["id"] is None, "id sent twice"
                call.update(id=e.id, name=e.name)
            call["arguments"] += e.arguments
    return content, calls


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_calls_reassemble_from_any_fragmentation(step):
    content, calls = _feed(CallParser(content_allowed=False), TWO_CALLS, step)
    assert content == ""
    assert [c["name"] for c in calls.values()] == ["get_weather", "lookup"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "days": [1, 2]}
    assert json.loads(calls[1]["arguments"]) == {"q": 'a "quoted" {brace}'}
    assert calls[0]["id"].startswith("call_") and calls[0]["id"] != calls[1]["id"]


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_auto_mode_text_before_a_call_is_content(step):
    text = "Let me check <that>. " + call_text("f", "{}")
    parser = CallParser(content_allowed=True)
    content, calls = _feed(parser, text, step)
    assert content == "Let me check <that>. "
    assert calls[0]["name"] == "f" and calls[0]["arguments"] == "{}"
    assert [c.arguments for c in parser.calls] == ["{}"]


def test_plain_text_with_a_lookalike_is_all_content():
    content, calls = _feed(CallParser(content_allowed=True), "a <tool_ b <tool_cal", 1)
    assert content == "a <tool_ b <tool_cal" and calls == {}
