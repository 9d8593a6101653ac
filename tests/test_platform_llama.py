"""The platform on the real chat model (run under the llama lock): a chat Batch API job that is
SIGKILLed mid-run and resumes on restart with every line answered exactly once; the 50-client
RPM-60 load test; dated snapshots (pinned, deprecated with a shutdown date, shut down)."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time

import httpx
import openai
import pytest

from conftest import LiveServer
from omnimini.access.keys import Keys
from omnimini.store import Store, default_url
from openapi_contract import validate
from test_platform_http import _max_in_window

WINDOW_S = 4.0          # rate-limit window of the load-test server (OpenAI's is 60 s; same code)
BATCH_LINES = 200
MAX_TOKENS = 3          # keeps the 200-line batch fast; the pipeline is the same at any length
PRICES = (0.15, 0.60)   # the embedded snapshot's catalog prices per 1M tokens


def _lines(n: int) -> bytes:
    return "\n".join(json.dumps({
        "custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "omnimini-mini", "max_tokens": MAX_TOKENS, "temperature": 0,
                 "messages": [{"role": "user", "content": f"Say the number {i}."}]}}) for i in range(n)).encode()


def test_batch_survives_sigkill_and_answers_every_line_once(tmp_path):
    server = LiveServer([], tmp_path)                     # loopback, no auth: the local default
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    try:
        f = client.files.create(file=("in.jsonl", _lines(BATCH_LINES)), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 300
        while (b := client.batches.retrieve(batch.id)).request_counts.completed < 20:
            assert b.status in ("validating", "in_progress") and time.monotonic() < deadline, b
            time.sleep(0.1)
        assert b.request_counts.completed < BATCH_LINES, "the batch finished before the kill"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
        killed_at = b.request_counts.completed
    finally:
        server.stop()

    server = LiveServer([], tmp_path)                     # same data dir: same store and files
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    try:
        deadline = time.monotonic() + 600
        while (b := client.batches.retrieve(batch.id)).status != "completed":
            assert b.status in ("in_progress", "finalizing") and time.monotonic() < deadline, b
            time.sleep(0.5)
        validate(b.model_dump(exclude_none=True), "Batch")
        assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (BATCH_LINES,
                                                                                                 BATCH_LINES, 0)
        assert b.error_file_id is None and b.model == "omnimini-mini-2026-11-21"
        out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
        ids = [o["custom_id"] for o in out]
        assert len(ids) == BATCH_LINES and sorted(ids) == sorted(f"req-{i}" for i in range(BATCH_LINES))
        assert len({o["id"] for o in out}) == BATCH_LINES
        for o in out[:5]:
            assert o["response"]["status_code"] == 200 and o["error"] is None
            validate(o["response"]["body"], "CreateChatCompletionResponse")
            assert o["response"]["body"]["model"] == "omnimini-mini-2026-11-21"
        completion = sum(o["response"]["body"]["usage"]["completion_tokens"] for o in out)
        prompt = sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
        assert (b.usage.input_tokens, b.usage.output_tokens) == (prompt, completion)
        # The bill: one usage row per line (none for the answer lost in the kill), at half price.
        db = sqlite3.connect(tmp_path / "data" / "omnimini.db")
        rows, cost = db.execute("SELECT count(*), sum(cost) FROM metering_usage WHERE batch_id = ?",
                                (batch.id,)).fetchone()
        assert rows == BATCH_LINES
        assert cost == pytest.approx(0.5 * (prompt * PRICES[0] + completion * PRICES[1]) / 1e6)
        assert killed_at >= 20
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, gguf_copy):
    tmp = tmp_path_factory.mktemp("llama-platform")
    store = Store.open(default_url(tmp / "data"))
    key = Keys(store).create("load", rpm=60)
    models = tmp / "models.yaml"
    models.write_text(
        "models:\n"
        "  - id: tiny-2026-01-01\n"
        f"    path: {gguf_copy}\n"
        "    context_length: 1024\n"
        "    shutdown_date: 2099-01-01\n"
        "  - id: tiny-2026-06-01\n"
        f"    path: {gguf_copy}\n"
        "    aliases: [tiny]\n"
        "    context_length: 1024\n"
        "  - id: tiny-2019-01-01\n"
        f"    path: {gguf_copy}\n"
        "    context_length: 1024\n"
        "    shutdown_date: 2020-01-01\n")
    live = LiveServer(["--auth", "--models-file", str(models)], tmp, env={"OMNIMINI_RATE_LIMIT_WINDOW": str(WINDOW_S)})
    yield {"server": live, "store": store, "key": key}
    live.stop()


def test_fifty_clients_one_key_rpm_60(keyed):
    """50 concurrent streaming clients on one key with RPM 60 (per 4-second window here) for two
    windows: at most 60 admitted in any window, every other request a 429 with headers, no 5xx.
    A stream's status arrives when it is admitted, and each client hangs up after the headers, so
    the clients keep the limit under pressure however slow the model is."""
    codes: list[int] = []
    bad: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 2 * WINDOW_S
    body = {"model": "omnimini-mini", "max_tokens": 1, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}

    def client() -> None:
        with httpx.Client(base_url=keyed["server"].base_url, timeout=60,
                          headers={"Authorization": f"Bearer {keyed['key'].secret}"}) as c:
            while time.monotonic() < stop_at:
                with c.stream("POST", "/chat/completions", json=body) as r:
                    h = r.headers
                    with lock:
                        codes.append(r.status_code)
                    if r.status_code == 429:
                        r.read()
                        if not (h.get("retry-after") and h.get("x-ratelimit-limit-requests") == "60"
                                and h.get("x-ratelimit-remaining-requests") == "0"
                                and r.json()["error"]["code"] == "rate_limit_exceeded"):
                            bad.append(f"{dict(h)} {r.text}")
                    elif r.status_code != 200 or h.get("x-ratelimit-limit-requests") != "60":
                        r.read()
                        bad.append(f"{r.status_code} {dict(h)} {r.text}")
                if r.status_code == 429:
                    time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad, bad[:3]
    ok, limited = codes.count(200), codes.count(429)
    assert ok + limited == len(codes) and limited > ok
    key_id = keyed["key"].principal.key_id
    deadline = time.monotonic() + 60
    while True:                                           # rows are written as the streams end
        with keyed["store"].read() as s:
            from omnimini.metering.tables import UsageRecord
            times = sorted(r.created_at for r in s.query(UsageRecord).filter(
                UsageRecord.key_id == key_id, UsageRecord.status == 200))
        if len(times) >= ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(f"\nload test: {len(codes)} requests, {ok} admitted, {limited} x 429, "
          f"most in one {WINDOW_S:g}s window: {_max_in_window(times, WINDOW_S)}")
    assert len(times) == ok                               # one usage row per admitted request
    assert _max_in_window(times, WINDOW_S) == 60          # the limit was reached, and never exceeded
    assert ok <= 60 * 3                                   # 2 windows of sending span at most 3


def test_snapshots_pinned_deprecated_and_shut_down(keyed):
    client = openai.OpenAI(base_url=keyed["server"].base_url, api_key=keyed["key"].secret, max_retries=3,
                           timeout=120)
    time.sleep(WINDOW_S)                                  # out of the load test's window
    ask = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    latest = client.chat.completions.with_raw_response.create(model="tiny", **ask)
    assert latest.parse().model == "tiny-2026-06-01" and "sunset" not in latest.headers
    pinned = client.chat.completions.with_raw_response.create(model="tiny-2026-01-01", **ask)
    assert pinned.parse().model == "tiny-2026-01-01"     # the pinned snapshot still answers
    assert pinned.headers["sunset"] == "Thu, 01 Jan 2099 00:00:00 GMT"
    assert "2099-01-01" in pinned.headers["warning"]
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="tiny-2019-01-01", **ask)
    assert "shut down on 2020-01-01" in e.value.message and e.value.code == "model_not_found"


def test_completions_batch_through_the_same_pipeline(keyed):
    client = openai.OpenAI(base_url=keyed["server"].base_url, api_key=keyed["key"].secret, max_retries=3,
                           timeout=120)
    lines = "\n".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/completions",
                                  "body": {"model": "omnimini-mini", "prompt": f"{i} + 1 =", "max_tokens": 2,
                                           "temperature": 0}}) for i in range(2))
    f = client.files.create(file=("c.jsonl", lines.encode()), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/completions", completion_window="24h")
    deadline = time.monotonic() + 120
    while (b := client.batches.retrieve(b.id)).status != "completed":
        assert time.monotonic() < deadline, b
        time.sleep(0.3)
    out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
    assert [o["custom_id"] for o in out] == ["c0", "c1"]
    for o in out:
        validate(o["response"]["body"], "CreateCompletionResponse")
        assert o["response"]["body"]["object"] == "text_completion"


def test_a_client_that_leaves_mid_stream_is_billed_for_what_was_generated(keyed):
    """The usage row of a stream cut short by its client counts the tokens generated before it left."""
    secret = Keys(keyed["store"]).create("leaver").secret
    base = keyed["server"].base_url
    body = {"model": "tiny", "max_tokens": 200, "stream": True, "temperature": 0,
            "logit_bias": {"2": -100},       # SmolLM2's <|im_end|>: it cannot stop on its own
            "messages": [{"role": "user", "content": "Tell me a very long story about a lighthouse."}]}
    seen = 0
    with httpx.stream("POST", base + "/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {secret}"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                seen += 1
            if seen >= 5:
                break                        # hang up
    deadline = time.monotonic() + 15
    while True:
        usage = httpx.get(base + "/usage", headers={"Authorization": f"Bearer {secret}"}).json()["data"]
        if (usage and usage[0]["requests"] == 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    line = usage[0]
    assert line["requests"] == 1 and line["prompt_tokens"] > 10
    assert 5 <= line["completion_tokens"] < 200, line
