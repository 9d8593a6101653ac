"""Tools and structured outputs through the official SDK: every call and every JSON answer valid by
construction, streamed or not."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel

from openapi_contract import validate
from sse import sse_events

MODEL = "omnimini-mini"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": False}, "strict": True}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a time zone",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
NO_ARGS = {"type": "function", "function": {"name": "ping"}}
TOOLS = [WEATHER, TIME, NO_ARGS]
ASK = [{"role": "user", "content": "What's the weather in Paris right now?"}]
PARAMS = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object", "maxProperties": 0}
          for t in TOOLS}
NO_END = {"0": -100, "2": -100}          # SmolLM2's <|endoftext|> and <|im_end|>


def _check_calls(calls, allowed=None):
    assert calls
    for c in calls:
        assert c.type == "function" and c.id.startswith("call_")
        assert c.function.name in (allowed or PARAMS)
        jsonschema.validate(json.loads(c.function.arguments), PARAMS[c.function.name])


def test_required_gives_valid_calls(client, http):
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                       max_tokens=200)
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.content is None
    _check_calls(r.choices[0].message.tool_calls)
    body = http.post("/chat/completions", json={"model": MODEL, "messages": ASK, "tools": TOOLS,
                                                "tool_choice": "required", "max_tokens": 200}).json()
    validate(body, "CreateChatCompletionResponse")


def test_named_tool_choice(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=200,
                                       tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = r.choices[0].message.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_time"
    _check_calls(calls)
    assert r.choices[0].finish_reason == "stop"        # as OpenAI answers a forced function


def test_parallel_calls_and_the_switch_off(client):
    # With the end of turn banned, the grammar's only way on is another call: several come out.
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                       max_tokens=400, logit_bias=NO_END, temperature=0)
    calls = r.choices[0].message.tool_calls
    assert 2 <= len(calls) <= 8
    _check_calls(calls)
    single = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                            max_tokens=200, logit_bias=NO_END, temperature=0,
                                            parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1


def test_auto_answers_in_text_or_makes_a_valid_call(client):
    results = []
    for seed in range(6):
        r = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="auto",
                                           max_tokens=120, seed=seed, temperature=1.0)
        msg = r.choices[0].message
        if msg.tool_calls:
            _check_calls(msg.tool_calls)
            assert r.choices[0].finish_reason in ("tool_calls", "length")
        else:
            assert msg.content and "<tool_call>" not in msg.content
        results.append(bool(msg.tool_calls))
    # The model was told how to call: a text answer with an opened but broken call never comes back.
    assert len(results) == 6


def test_streamed_calls_reassemble_in_the_sdk(client, http):
    kwargs = dict(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required", max_tokens=300,
                  logit_bias=NO_END, temperature=0)
    whole = client.chat.completions.create(**kwargs)
    with client.chat.completions.stream(**kwargs) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    got = [(c.function.name, json.loads(c.function.arguments)) for c in final.choices[0].message.tool_calls]
    want = [(c.function.name, json.loads(c.function.arguments)) for c in whole.choices[0].message.tool_calls]
    assert got == want and len(got) >= 2
    assert final.choices[0].finish_reason == "tool_calls"
    events, _ = sse_events(http, "/chat/completions", {**kwargs, "stream": True})
    for e in events:
        validate(e, "CreateChatCompletionStreamResponse")
    firsts = [tc for e in events for c in e["choices"] for tc in (c["delta"].get("tool_calls") or [])
              if "id" in tc]
    assert all(tc["type"] == "function" and tc["function"]["arguments"] == "" for tc in firsts)


def test_multi_turn_with_tool_results(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
                                       max_tokens=100, parallel_tool_calls=False)
    call = r.choices[0].message.tool_calls[0]
    history = ASK + [r.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18, "sky": "clear"}'}]
    follow = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER], max_tokens=40,
                                            tool_choice="none")
    assert follow.choices[0].message.content
    alone = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=1,
                                           tool_choice="none")
    # The call and its result are part of the prompt now (about 40 tokens of them).
    assert follow.usage.prompt_tokens - alone.usage.prompt_tokens > 30


class Receipt(BaseModel):
    store: str
    total: float
    currency: Literal["USD", "EUR"]
    items: list[str]


RECEIPT = "HARBOR BAKERY\nSourdough 6.50\nCroissant 3.00\nCoffee 3.00\nTOTAL 12.50 USD"


def test_parse_returns_a_pydantic_object(client):
    r = client.chat.completions.parse(model=MODEL, response_format=Receipt, max_tokens=300, temperature=0,
                                      messages=[{"role": "system", "content": "Extract the receipt."},
                                                {"role": "user", "content": RECEIPT}])
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Receipt) and parsed.currency in ("USD", "EUR")


def test_json_object_and_json_schema_with_logprobs(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Give me a JSON object with a name and an age."}],
                                       response_format={"type": "json_object"}, max_tokens=300, temperature=0)
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"total": {"type": "number"},
                                               "lines": {"type": "array", "items": {"type": "string"}, "maxItems": 4}},
              "required": ["total", "lines"], "additionalProperties": False}
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": RECEIPT}], max_tokens=200, logprobs=True,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    assert "".join(t.token for t in r.choices[0].logprobs.content) == r.choices[0].message.content


def test_schema_holds_across_seeds_and_streaming(client):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40},
                                               "confidence": {"enum": ["low", "high"]}},
              "required": ["answer", "confidence"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    for seed in range(5):
        r = client.chat.completions.create(model=MODEL, messages=ASK, response_format=fmt, seed=seed,
                                           temperature=1.0, max_tokens=150)
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    stream = client.chat.completions.create(model=MODEL, messages=ASK, response_format=fmt, stream=True,
                                            max_tokens=150)
    jsonschema.validate(json.loads("".join(c.choices[0].delta.content or "" for c in stream if c.choices)), schema)


@pytest.mark.parametrize("body,param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "strng"}}}],
      "tool_choice": "required"}, "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "integer", "minimum": 1}}}]},
     "tools[0].function.parameters"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [WEATHER, WEATHER]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]},
     "messages[1].tool_call_id"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "format": "email"}}}},
     "response_format.json_schema.schema"),
    ({"response_format": {"type": "yaml"}}, "response_format"),
    ({"response_format": {"type": "json_object"}, "tools": [WEATHER], "tool_choice": "required"}, "response_format"),
])
def test_tool_and_format_bad_input(http, body, param):
    r = http.post("/chat/completions", json={"model": MODEL, "messages": ASK, "max_tokens": 5, **body})
    assert r.status_code == 400, r.text
    validate(r.json(), "ErrorResponse")
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["message"]


def test_runaway_json_is_closed_before_the_budget_ends(client):
    """SmolLM2 repeats itself inside a string on this prompt; near max_tokens the closing pressure
    makes it end its strings and brackets: finish_reason says 'length', and the JSON still parses."""
    msgs = [{"role": "user", "content": "Describe a cat as JSON."}]
    for max_tokens in (60, 120):
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=max_tokens, temperature=0,
                                           response_format={"type": "json_object"})
        assert r.choices[0].finish_reason == "length"
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"cat": {"type": "object", "properties": {
        "name": {"type": "string"}, "colors": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "colors"]}}, "required": ["cat"]}
    r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=80, temperature=0,
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "c", "schema": schema}})
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
