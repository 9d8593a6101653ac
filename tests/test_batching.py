"""Many requests at once on a server with `--parallel 4` (continuous batching): every request keeps
its own parameters, prompts are prefilled beside running decodes, and a shared system prompt is
computed once and shared between slots."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest

from conftest import LiveServer

MODEL = "omnimini-mini"
PROMPTS = [f"Write one sentence about the number {n}." for n in range(8)]


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    live = LiveServer(["--parallel", "4"], tmp_path_factory.mktemp("batched"))
    yield openai.OpenAI(base_url=live.base_url, api_key="x", max_retries=0, timeout=120)
    live.stop()


def _ask(client, prompt, **kw):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                       **{"max_tokens": 24, "temperature": 0, **kw})
    return r


def test_eight_concurrent_requests_each_get_their_own_answer(batched):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    jobs = [dict(max_tokens=5 + i) for i in range(4)] + [dict(response_format=fmt, max_tokens=40) for _ in range(4)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda ij: _ask(batched, PROMPTS[ij[0]], **ij[1]), enumerate(jobs)))
    for i, r in enumerate(results[:4]):            # each stopped at its own budget
        assert r.usage.completion_tokens <= 5 + i
        assert r.usage.completion_tokens == 5 + i or r.choices[0].finish_reason == "stop"
    for r in results[4:]:                           # each kept its own grammar
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_seeded_sampling_is_reproducible_under_load_for_the_same_batch_shape(batched):
    run = lambda: list(ThreadPoolExecutor(4).map(  # noqa: E731
        lambda s: _ask(batched, PROMPTS[0], seed=s, temperature=1.0, max_tokens=1).choices[0].message.content,
        range(4)))
    # One token each: the first sampled token depends only on the prompt's logits and the seed.
    assert run() == run()


def test_shared_system_prompt_is_computed_once_across_slots(batched):
    system = "You are a meticulous assistant who answers in plain words. " * 12
    msgs = lambda q: [{"role": "system", "content": system}, {"role": "user", "content": q}]  # noqa: E731
    first = batched.chat.completions.create(model=MODEL, messages=msgs("Hi"), max_tokens=2)
    with ThreadPoolExecutor(4) as pool:
        usages = list(pool.map(lambda q: batched.chat.completions.create(
            model=MODEL, messages=msgs(q), max_tokens=2).usage, ["One?", "Two?", "Three?", "Four?"]))
    # Every request, in whichever slot it ran, found the ~130-token system prompt already computed.
    assert all(u.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 8 for u in usages)


@pytest.mark.xfail(strict=True, reason="llama.cpp's kernels sum in another order for other batch and "
                   "KV shapes; greedy output drifts after a few tokens (issue 3)")
def test_greedy_output_is_the_same_alone_and_beside_seven_others(batched):
    alone = [_ask(batched, p).choices[0].message.content for p in PROMPTS]
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: _ask(batched, p).choices[0].message.content, PROMPTS))
    assert together == alone
