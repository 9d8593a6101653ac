"""Tests for tests/openapi_contract.py: the validator accepts spec-conformant
bodies (including the spec's own examples) and rejects broken ones."""

import copy
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import openapi_contract as oc  # noqa: E402

pytestmark = pytest.mark.skipif(not oc.SPEC_PATH.is_file(), reason=f"OpenAPI spec not found at {oc.SPEC_PATH}")


def spec_examples(schema_name):
    """JSON bodies from the spec's ``x-oaiMeta.example`` of a component.

    Examples are stored as strings: usually one JSON document; for stream
    chunks one JSON document per line, separated by a literal ``....``.
    """
    text = oc.schema(schema_name)["x-oaiMeta"]["example"]
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


# ---- realistic instances ---------------------------------------------------

USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}

CHAT_COMPLETION = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "omnimini-tiny",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}

CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1741570283,
    "model": "omnimini-tiny",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "logprobs": None, "finish_reason": None}],
}

MODEL = {"id": "omnimini-tiny", "object": "model", "created": 1686935002, "owned_by": "omnimini"}

COMPLETION = {
    "id": "cmpl-123",
    "object": "text_completion",
    "created": 1589478378,
    "model": "omnimini-tiny",
    "choices": [{"text": "\n\nThis is a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": USAGE,
}

EMBEDDINGS = {
    "object": "list",
    "model": "omnimini-embed",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 0.015797347]}],
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}

ERROR = {"error": {"message": "The model `nope` does not exist", "type": "invalid_request_error", "param": None, "code": "model_not_found"}}


def mutated(instance, edit):
    """Deep copy of ``instance`` with ``edit(copy)`` applied."""
    out = copy.deepcopy(instance)
    edit(out)
    return out


# ---- (1) the spec's own examples validate -----------------------------------

@pytest.mark.parametrize("name", ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "Model", "CreateCompletionResponse"])
def test_spec_examples_validate(name):
    examples = spec_examples(name)
    assert examples
    for body in examples:
        oc.validate(body, name)


# ---- (2) nullable (OpenAPI 3.0 style) is honoured ---------------------------

def test_stream_chunk_with_null_finish_reason_and_logprobs():
    oc.validate(CHUNK, "CreateChatCompletionStreamResponse")
    # `finish_reason`/`logprobs` are `type: ..., nullable: true` in the spec;
    # `usage` is `$ref + nullable: true` (-> anyOf wrap). Final chunks too:
    last = mutated(CHUNK, lambda c: c["choices"][0].update(delta={}, finish_reason="stop"))
    usage_chunk = mutated(CHUNK, lambda c: c.update(choices=[], usage=USAGE))
    for body in (last, usage_chunk, mutated(CHUNK, lambda c: c.update(usage=None))):
        assert oc.errors(body, "CreateChatCompletionStreamResponse") == []


def test_nullable_rewrite_keeps_enum_and_type():
    choice = oc.schema("CreateChatCompletionStreamResponse")["properties"]["choices"]["items"]
    assert choice["properties"]["finish_reason"]["type"] == ["string", "null"]
    assert choice["properties"]["finish_reason"]["enum"][-1] is None
    # ...but a non-null value must still be one of the enum values
    bad = mutated(CHUNK, lambda c: c["choices"][0].update(finish_reason="banana"))
    with pytest.raises(oc.ValidationError, match=r"choices\[0\]\.finish_reason.*banana"):
        oc.validate(bad, "CreateChatCompletionStreamResponse")
    assert '"nullable": true' not in json.dumps(oc.schema("CreateChatCompletionStreamResponse"))


# ---- (3) broken instances fail ----------------------------------------------

@pytest.mark.parametrize(
    "name, instance, validator, where",
    [
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c.pop("choices")), "required", "$"),
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c.update(object="chat.completion.x")), "enum", "$.object"),
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c["choices"][0].update(finish_reason="banana")), "enum", "$.choices[0].finish_reason"),
        ("CreateChatCompletionStreamResponse", mutated(CHUNK, lambda c: c.update(object="chat.completion.x")), "enum", "$.object"),
        ("Model", mutated(MODEL, lambda m: m.pop("owned_by")), "required", "$"),
        ("ListModelsResponse", {"object": "list", "data": [mutated(MODEL, lambda m: m.pop("owned_by"))]}, "required", "$.data[0]"),
        ("ErrorResponse", mutated(ERROR, lambda e: e["error"].pop("message")), "required", "$.error"),
    ],
    ids=["no-choices", "bad-object", "bad-finish-reason", "chunk-bad-object", "model-no-owned_by", "list-model-no-owned_by", "error-no-message"],
)
def test_broken_instances_fail(name, instance, validator, where):
    with pytest.raises(oc.ValidationError) as exc:
        oc.validate(instance, name)
    assert exc.value.validator == validator
    assert str(exc.value).startswith(f"{name}: {where}: ")
    assert len(str(exc.value)) < 500  # compact: no schema dump
    assert oc.errors(instance, name)


def test_errors_lists_every_violation():
    bad = mutated(CHAT_COMPLETION, lambda c: (c.pop("id"), c.update(object="x"), c["choices"][0].update(finish_reason="banana")))
    found = oc.errors(bad, "CreateChatCompletionResponse")
    assert len(found) == 3, found
    assert any("'id' is a required property" in e for e in found)


def test_unknown_schema_name():
    with pytest.raises(KeyError):
        oc.validate({}, "NoSuchSchema")


# ---- (4) valid bodies of the endpoints we serve ------------------------------

@pytest.mark.parametrize(
    "name, instance",
    [
        ("CreateChatCompletionResponse", CHAT_COMPLETION),
        ("ListModelsResponse", {"object": "list", "data": [MODEL, dict(MODEL, id="omnimini-embed", shutdown_date=None)]}),
        ("ListModelsResponse", {"object": "list", "data": []}),
        ("CreateEmbeddingResponse", EMBEDDINGS),
        ("CreateCompletionResponse", COMPLETION),
        ("ErrorResponse", ERROR),
        ("ErrorResponse", {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}),
    ],
)
def test_valid_bodies(name, instance):
    oc.validate(instance, name)


# ---- strictness the spec imposes (pinned so server authors notice) ----------

@pytest.mark.parametrize(
    "name, instance",
    [
        # `Embedding.embedding` is only `array of number`: the base64 string
        # returned for encoding_format="base64" is NOT described by the spec.
        ("CreateEmbeddingResponse", mutated(EMBEDDINGS, lambda e: e["data"][0].update(embedding="AACAPwAAAEA="))),
        # non-streamed chat: finish_reason is required and NOT nullable
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c["choices"][0].update(finish_reason=None))),
        # legacy completions: finish_reason not nullable, even for stream chunks
        ("CreateCompletionResponse", mutated(COMPLETION, lambda c: c["choices"][0].update(finish_reason=None))),
        # message.content / refusal are required (nullable); tool_calls is not nullable
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c["choices"][0]["message"].pop("refusal"))),
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c["choices"][0]["message"].update(tool_calls=None))),
        ("CreateChatCompletionResponse", mutated(CHAT_COMPLETION, lambda c: c.update(usage=None))),
        # Error requires all four of message, type, param, code
        ("ErrorResponse", mutated(ERROR, lambda e: e["error"].pop("code"))),
    ],
    ids=["base64-embedding", "chat-null-finish", "completion-null-finish", "no-refusal", "null-tool_calls", "null-usage", "error-no-code"],
)
def test_spec_strictness(name, instance):
    assert oc.errors(instance, name)


def test_validation_is_fast_after_first_load():
    oc.validate(CHAT_COMPLETION, "CreateChatCompletionResponse")  # warm caches
    start = time.perf_counter()
    for _ in range(100):
        oc.validate(CHAT_COMPLETION, "CreateChatCompletionResponse")
    assert (time.perf_counter() - start) / 100 < 0.05
