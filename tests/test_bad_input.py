"""Bad input gets OpenAI's error envelope with a 4xx, never a 500, and the server keeps serving."""

from __future__ import annotations

import pytest

from openapi_contract import validate

OK = {"model": "omnimini-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _post(http, path, **kw):
    r = http.post(path, **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    validate(body, "ErrorResponse")
    return r.status_code, body["error"]


CASES = [
    ("malformed json", dict(content=b'{"model": "omnimini-mini", "messages": [', headers={"content-type": "application/json"}), 400, None),
    ("not an object", dict(json=[1, 2]), 400, None),
    ("empty body", dict(content=b"", headers={"content-type": "application/json"}), 400, None),
    ("missing messages", dict(json={"model": "omnimini-mini"}), 400, "messages"),
    ("missing model", dict(json={"messages": OK["messages"]}), 400, "model"),
    ("empty messages", dict(json={**OK, "messages": []}), 400, "messages"),
    ("unknown role", dict(json={**OK, "messages": [{"role": "wizard", "content": "x"}]}), 400, "messages[0].role"),
    ("content wrong type", dict(json={**OK, "messages": [{"role": "user", "content": 42}]}), 400, "messages[0].content"),
    ("tool without id", dict(json={**OK, "messages": [{"role": "tool", "content": "x"}]}), 400, "messages[0].tool_call_id"),
    ("temperature type", dict(json={**OK, "temperature": "hot"}), 400, "temperature"),
    ("temperature range", dict(json={**OK, "temperature": 2.5}), 400, "temperature"),
    ("top_p range", dict(json={**OK, "top_p": -0.1}), 400, "top_p"),
    ("max_tokens zero", dict(json={**OK, "max_tokens": 0}), 400, "max_tokens"),
    ("max_tokens negative", dict(json={**OK, "max_tokens": -5}), 400, "max_tokens"),
    ("max_completion_tokens zero", dict(json={**OK, "max_completion_tokens": 0}), 400, "max_completion_tokens"),
    ("n too large", dict(json={**OK, "n": 129}), 400, "n"),
    ("n zero", dict(json={**OK, "n": 0}), 400, "n"),
    ("five stops", dict(json={**OK, "stop": ["a", "b", "c", "d", "e"]}), 400, "stop"),
    ("penalty range", dict(json={**OK, "presence_penalty": 3}), 400, "presence_penalty"),
    ("logit_bias key", dict(json={**OK, "logit_bias": {"hello": 5}}), 400, "logit_bias"),
    ("logit_bias range", dict(json={**OK, "logit_bias": {"5": 500}}), 400, "logit_bias.5"),
    ("logit_bias token id", dict(json={**OK, "logit_bias": {"99999999": 5}}), 400, "logit_bias"),
    ("top_logprobs range", dict(json={**OK, "logprobs": True, "top_logprobs": 21}), 400, "top_logprobs"),
    ("top_logprobs without logprobs", dict(json={**OK, "top_logprobs": 2}), 400, "top_logprobs"),
    ("unknown parameter", dict(json={**OK, "frobnicate": True}), 400, "frobnicate"),
    ("stream_options without stream", dict(json={**OK, "stream_options": {"include_usage": True}}), 400, "stream_options"),
    ("image part", dict(json={**OK, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}), 400, "messages[0].content[1]"),
    ("audio part", dict(json={**OK, "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}), 400,
     "messages[0].content[0].input_audio.data"),     # 3 bytes: not audio (issue 9 reads audio parts)
    ("functions (deprecated)", dict(json={**OK, "functions": [{"name": "f"}]}), 400, "functions"),
    ("audio output without audio", dict(json={**OK, "modalities": ["text", "audio"]}), 400, "audio"),
    ("unknown model", dict(json={**OK, "model": "gpt-99"}), 404, "model"),
    ("embedding model for chat", dict(json={**OK, "model": "omnimini-embed"}), 400, "model"),
]


@pytest.mark.parametrize("name,kw,status,param", CASES, ids=[c[0] for c in CASES])
def test_chat_bad_input(http, name, kw, status, param):
    got, err = _post(http, "/chat/completions", **kw)
    assert got == status
    assert err["param"] == param
    assert err["type"] == "invalid_request_error" and err["message"]


def test_unknown_model_code(http):
    _, err = _post(http, "/chat/completions", json={**OK, "model": "gpt-99"})
    assert err["code"] == "model_not_found"


def test_prompt_longer_than_context(http):
    long = "word " * 9000          # the embedded model's context is 8192 tokens
    status, err = _post(http, "/chat/completions",
                        json={**OK, "messages": [{"role": "user", "content": long}]})
    assert status == 400 and err["code"] == "context_length_exceeded"
    # A prompt that fits, with max_tokens that would overflow, is refused up front too.
    status, err = _post(http, "/chat/completions",
                        json={**OK, "messages": [{"role": "user", "content": "word " * 8000}], "max_tokens": 500})
    assert err["code"] == "context_length_exceeded" and err["param"] == "max_tokens"
    # The configured model's own (smaller) context is enforced as well.
    status, err = _post(http, "/chat/completions",
                        json={**OK, "model": "my-model", "messages": [{"role": "user", "content": "word " * 1100}]})
    assert err["code"] == "context_length_exceeded" and "1024" in err["message"]


def test_streaming_request_errors_before_the_stream(http):
    status, err = _post(http, "/chat/completions", json={**OK, "stream": True, "model": "nope"})
    assert status == 404


def test_unknown_route_and_method(http):
    status, err = _post(http, "/nothing-here", json={})
    assert status == 404 and "Invalid URL" in err["message"]
    r = http.get("/chat/completions")
    assert r.status_code == 405
    validate(r.json(), "ErrorResponse")


def test_server_still_healthy_after_bad_input(client):
    r = client.chat.completions.create(model="omnimini-mini", max_tokens=2,
                                       messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content is not None


def test_oversized_body_is_413_with_envelope(http):
    big = b'{"model": "omnimini-mini", "messages": [{"role": "user", "content": "' + b"a" * (17 << 20) + b'"}]}'
    r = http.post("/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    validate(r.json(), "ErrorResponse")

    def chunked():                      # no content-length: the cap must still hold
        for _ in range(20):
            yield b"x" * (1 << 20)
    r = http.post("/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_every_response_has_a_request_id(http):
    ok = http.get("/models")
    bad = http.post("/chat/completions", json={})
    assert ok.headers["x-request-id"].startswith("req_") and bad.headers["x-request-id"].startswith("req_")
    assert ok.headers["x-request-id"] != bad.headers["x-request-id"]
