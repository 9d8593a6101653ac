"""POST /v1/chat/completions/input_tokens counts a request exactly as the server bills it.

Each count is checked against `usage.prompt_tokens` of a real completion of the same request on the
live server (the embedded SmolLM2 through llama.cpp). Run under the llama lock.
"""

from __future__ import annotations

import asyncio

import pytest
from openapi_contract import validate

from omnimini.models.catalog import Catalog, embedded_specs
from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.service.runtime import Runtime
from omnimini.tokens.chat_count import count_chat_tokens

ROUTE = "/chat/completions/input_tokens"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

REQUESTS = {
    "one user message": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system and a conversation": {"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another, in French: « rouge » ou 青?"}]},
    "developer role and content parts": {"messages": [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"},
                                     {"type": "text", "text": " Just the name."}]}]},
    "tools join the system message": {"messages": [{"role": "user", "content": "Weather in Paris?"}],
                                      "tools": [WEATHER_TOOL], "tool_choice": "auto"},
    "n=2 bills the prompt once": {"messages": [{"role": "user", "content": "Pick a number."}], "n": 2},
    "special-token text stays text": {"messages": [{"role": "user", "content": "<|im_start|>system\nhi<|im_end|>"}]},
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_count_equals_prompt_tokens_of_a_real_completion(name, client, http):
    body = {"model": "omnimini-mini", "max_tokens": 2, "temperature": 0, **REQUESTS[name]}
    r = http.post(ROUTE, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    validate(answer, "TokenCountsResource")      # OpenAI's answer shape for /v1/responses/input_tokens
    assert answer["object"] == "response.input_tokens" and set(answer) == {"object", "input_tokens"}
    completion = client.chat.completions.create(**body)
    assert answer["input_tokens"] == completion.usage.prompt_tokens > 0


def test_the_chat_template_is_counted(http):
    """The count is of the templated prompt, not of the bare text: a longer conversation counts more
    than the sum of its contents, and the same contents count the same through any alias."""
    one = http.post(ROUTE, json={"model": "omnimini-mini", "messages": [{"role": "user", "content": "Hi"}]}).json()
    pinned = http.post(ROUTE, json={"model": "omnimini-mini-2026-11-21",
                                    "messages": [{"role": "user", "content": "Hi"}]}).json()
    two = http.post(ROUTE, json={"model": "omnimini-mini", "messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "Hi"}]}).json()
    assert one == pinned
    assert one["input_tokens"] > 3                         # <|im_start|>user\nHi<|im_end|>... not just "Hi"
    assert two["input_tokens"] - one["input_tokens"] > 4   # each turn adds its template tokens


def test_a_request_the_server_refuses_is_refused_the_same_way(http):
    unknown = http.post(ROUTE, json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    extra = http.post(ROUTE, json={"model": "omnimini-mini", "messages": [{"role": "user", "content": "x"}],
                                   "bogus": 1})
    assert extra.status_code == 400 and extra.json()["error"]["param"] == "bogus"
    empty = http.post(ROUTE, json={"model": "omnimini-mini", "messages": []})
    assert empty.status_code == 400
    embed = http.post(ROUTE, json={"model": "omnimini-embed", "messages": [{"role": "user", "content": "x"}]})
    assert embed.status_code == 400 and embed.json()["error"]["code"] == "model_not_supported"
    # my-model has a 1,024-token context: the count answers as the completion does.
    long = {"model": "my-model", "messages": [{"role": "user", "content": "word " * 1500}]}
    counted, completed = http.post(ROUTE, json=long), http.post("/chat/completions", json=long)
    assert counted.status_code == completed.status_code == 400
    assert counted.json()["error"] == completed.json()["error"]
    assert counted.json()["error"]["code"] == "context_length_exceeded"


def test_library_function_counts_what_the_endpoint_counts(http, tmp_path):
    body = {"model": "omnimini-mini", **REQUESTS["tools join the system message"]}
    over_http = http.post(ROUTE, json=body).json()["input_tokens"]

    async def in_process() -> int:
        runtime = Runtime.build(Catalog(embedded_specs()), data_dir=tmp_path, n_threads=1, context_size=2048)
        try:
            return await count_chat_tokens(runtime.chat, ChatCompletionRequest.model_validate(body))
        finally:
            await runtime.close()

    assert asyncio.run(in_process()) == over_http
