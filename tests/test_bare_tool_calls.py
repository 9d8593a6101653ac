"""Tool calls written as bare JSON (no <tool_call> tag), as Qwen2.5-Coder-0.5B writes them in auto
mode: taken as calls only when the whole answer is such calls, with known names and valid arguments."""

from __future__ import annotations

import json

import pytest

from omnimini.service.tools import CallParser
from test_tool_parser import _feed

SCHEMAS = {
    "get_weather": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                    "additionalProperties": False},
    "get_time": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}
PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def parse(text: str, step: int = 3) -> tuple[str, list[tuple[str, dict]]]:
    """Feed `text` in pieces of `step` characters; (content, [(name, arguments)])."""
    content, calls = _feed(CallParser(schemas=SCHEMAS), text, step)
    assert all(c["id"].startswith("call_") for c in calls.values())
    return content, [(c["name"], json.loads(c["arguments"])) for c in calls.values()]


@pytest.mark.parametrize("text", [
    PARIS,
    "  \n" + PARIS + "\n",
    "```json\n" + PARIS + "\n```",
    "```\n" + PARIS + "\n```",
    "[" + PARIS + "]",
    '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',     # arguments as a string
    '{"name": "get_weather", "parameters": {"city": "Paris"}}',
])
def test_an_answer_that_is_a_bare_call_becomes_a_call(text):
    for step in (1, 3, len(text)):
        assert parse(text, step) == ("", [("get_weather", {"city": "Paris"})])


def test_several_bare_calls_one_per_line():
    text = PARIS + '\n{"name": "get_time", "arguments": {"zone": "CET"}}'
    assert parse(text) == ("", [("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})])


@pytest.mark.parametrize("text", [
    '{"name": "get_weather", "arguments": {"town": "Paris"}}',          # fails the schema
    '{"name": "get_weather", "arguments": {"city": 7}}',
    '{"name": "launch", "arguments": {}}',                               # no such function
    '{"name": ["get_weather"], "arguments": {"city": "Paris"}}',          # a name that is no string
    '{"name": "get_weather", "arguments": {"city": "Paris"}, "x": 1}',   # not a call object
    '{"city": "Paris"}',
    '{"name": "get_weather", "arguments": {"city": "Paris"',            # cut short
    PARIS + " and that is all",                                           # text after it
    '[1, 2, 3]',
    "{}",
])
def test_json_that_is_not_a_valid_call_stays_content(text):
    assert parse(text) == (text, [])


@pytest.mark.parametrize("text", [
    "The weather tool would need " + PARIS,            # JSON after text is not a call
    "`x` is a variable",                                # a backtick that is not a fence
    "Sure! ```json\n" + PARIS + "\n```",
])
def test_text_first_answers_stream_as_text(text):
    p = CallParser(schemas=SCHEMAS)
    first, _ = p.feed(text[:12])
    assert first, "text that does not start with JSON is not held back"
    assert parse(text) == (text, [])


def test_a_tagged_call_still_parses_with_bare_detection_on():
    text = "<tool_call>\n" + PARIS + "\n</tool_call>"
    assert parse(text) == ("", [("get_weather", {"city": "Paris"})])


def test_without_schemas_bare_json_is_content():
    assert _feed(CallParser(content_allowed=True), PARIS, 3) == (PARIS, {})


def _bare_call_conversation():
    """Two earlier turns in which the assistant answered with a bare JSON call; the model follows."""
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": SCHEMAS["get_weather"]}}]
    messages = [{"role": "system", "content": "You answer weather questions by calling get_weather."}]
    for city in ("Paris", "Rome", "Oslo"):
        messages += [{"role": "user", "content": f"Weather in {city}?"},
                     {"role": "assistant", "content": json.dumps({"name": "get_weather",
                                                                  "arguments": {"city": city}})}]
    messages.append({"role": "user", "content": "Weather in Madrid?"})
    return tools, messages


def test_live_bare_call_comes_back_as_tool_calls(client):
    """The real model, copying the bare-JSON pattern of the conversation, gets an OpenAI tool call
    back: whole and streamed, the same call, finish_reason tool_calls."""
    tools, messages = _bare_call_conversation()
    r = client.chat.completions.create(model="omnimini-mini", messages=messages, tools=tools,
                                       temperature=0, max_tokens=40)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    args = json.loads(call.function.arguments)
    assert set(args) == {"city"} and isinstance(args["city"], str)

    stream = client.chat.completions.create(model="omnimini-mini", messages=messages, tools=tools,
                                            temperature=0, max_tokens=40, stream=True)
    content, name, arguments, finish = "", None, "", None
    for chunk in stream:
        for c in chunk.choices:
            d = c.delta
            content += d.content or ""
            for tc in d.tool_calls or []:
                name = tc.function.name or name
                arguments += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert (content, name, json.loads(arguments), finish) == ("", "get_weather", args, "tool_calls")
