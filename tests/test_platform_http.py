"""The platform over real HTTP with the official openai SDK, without loading a chat model: API keys,
429s with OpenAI's headers, the 50-client load test, two servers sharing one store, usage, the
Files API and an embeddings batch (the chat batch, the kill-and-resume test and the 50-client
load test are in test_platform_llama.py). The servers preload only the numpy embedder, so no llama.cpp lock is needed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from conftest import LiveServer, free_port
from omnimini.access.keys import Keys
from omnimini.metering.tables import UsageRecord
from omnimini.store import Store, default_url
from openapi_contract import validate
from store_fixtures import pg_server  # noqa: F401

WINDOW_S = 4.0              # the rate-limit window of these servers (OpenAI's is 60 s; same code path)
MAX_FILE = 256 * 1024
EMBED = "omnimini-embed"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platform")
    store = Store.open(default_url(tmp / "data"))
    keys = Keys(store)
    k = {name: keys.create(name, **opts).secret for name, opts in {
        "free": {}, "admin": {"admin": True}, "rpm2": {"rpm": 2}, "load": {"rpm": 60},
        "shared": {"rpm": 10}, "chat-only": {"models": ["omnimini-mini"]}, "revoked": {}, "other": {},
        "tpm": {"tpm": 20}}.items()}
    keys.revoke("revoked")
    server_env = {"OMNIMINI_RATE_LIMIT_WINDOW": str(WINDOW_S), "OMNIMINI_MAX_FILE_BYTES": str(MAX_FILE)}
    live = LiveServer(["--preload", EMBED, "--auth"], tmp, env=server_env)
    yield {"tmp": tmp, "store": store, "keys": k, "server": live, "env": server_env}
    live.stop()


def sdk(env, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=env["server"].base_url, api_key=env["keys"].get(key, key), max_retries=0,
                         timeout=60)


def embed(client: openai.OpenAI, text: str = "hello"):
    return client.embeddings.create(model=EMBED, input=text)


def test_keys_required_on_every_v1_route(env):
    for key in ("not-a-key", "revoked"):
        with pytest.raises(openai.AuthenticationError) as e:
            embed(sdk(env, key))
        assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    for method, path in (("GET", "/models"), ("GET", "/files"), ("GET", "/batches"), ("GET", "/usage"),
                         ("POST", "/chat/completions")):
        r = httpx.request(method, env["server"].base_url + path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
    assert httpx.get(env["server"].url + "/health").status_code == 200      # not under /v1
    assert len(embed(sdk(env, "free")).data[0].embedding) == 384


def test_a_key_only_reaches_its_models(env):
    with pytest.raises(openai.NotFoundError) as e:
        embed(sdk(env, "chat-only"))
    assert e.value.code == "model_not_found"


def test_429_with_openai_headers(env):
    client = sdk(env, "rpm2")                         # a fresh key: its window is empty
    raw = client.embeddings.with_raw_response.create(model=EMBED, input="a")
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    embed(client)
    with pytest.raises(openai.RateLimitError) as e:
        embed(client)
    err = e.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded" and err.type == "requests"
    h = err.response.headers
    assert 1 <= int(h["retry-after"]) <= WINDOW_S + 1
    assert h["x-ratelimit-remaining-requests"] == "0" and h["x-ratelimit-limit-requests"] == "2"
    time.sleep(int(h["retry-after"]))
    embed(client)                        # the window moved on


def test_tpm_limit_counts_tokens(env):
    client = sdk(env, "tpm")
    r = client.embeddings.with_raw_response.create(model=EMBED, input="one two three four five six")
    used = r.parse().usage.prompt_tokens
    assert int(r.headers["x-ratelimit-remaining-tokens"]) == 20 - used
    with pytest.raises(openai.RateLimitError) as e:
        for _ in range(20 // used + 1):
            embed(client, "one two three four five six")
    assert e.value.type == "tokens"


def _admitted_times(env, key_name: str) -> list[float]:
    key_id = Keys(env["store"]).find(key_name).id
    with env["store"].read() as s:
        return sorted(r.created_at for r in s.query(UsageRecord).filter(UsageRecord.key_id == key_id,
                                                                     UsageRecord.status == 200))


def _max_in_window(times: list[float], window: float) -> int:
    """The most admissions in any half-open interval [x, x + window)."""
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_two_servers_sharing_the_store_hold_one_limit(env):
    second = LiveServer(["--preload", EMBED, "--auth"], env["tmp"], env=env["env"])
    try:
        key = env["keys"]["shared"]
        urls = [env["server"].base_url, second.base_url] * 15
        codes: list[int] = []

        def hit(url: str) -> None:
            r = httpx.post(url + "/embeddings", json={"model": EMBED, "input": "x"},
                           headers={"Authorization": f"Bearer {key}"}, timeout=60)
            codes.append(r.status_code)

        threads = [threading.Thread(target=hit, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(set(codes)) == [200, 429]
        time.sleep(0.5)
        assert _max_in_window(_admitted_times(env, "shared"), WINDOW_S) <= 10
        assert codes.count(200) <= 10 * 2             # the 30 requests span at most two windows
    finally:
        second.stop()


def test_usage_endpoint_matches_the_cli(env):
    admin, own = sdk(env, "admin"), sdk(env, "free")
    http = admin._client
    time.sleep(0.3)
    r = http.get(env["server"].base_url + "/usage", params={"group_by": "model"},
                 headers={"Authorization": f"Bearer {env['keys']['admin']}"})
    assert r.status_code == 200
    cli = subprocess.run([sys.executable, "-m", "omnimini", "usage", "--json", "--group-by", "model",
                          "--data-dir", str(env["tmp"] / "data")], capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout) == r.json()
    line = r.json()["data"][0]
    assert line["group"] == "all-minilm-l6-v2" and line["requests"] >= 5 and line["cost"] > 0
    mine = own._client.get(env["server"].base_url + "/usage",
                           headers={"Authorization": f"Bearer {env['keys']['free']}"}).json()
    assert mine["key"] == Keys(env["store"]).find("free").id and mine["data"][0]["requests"] >= 1
    forbidden = httpx.get(env["server"].base_url + "/usage", params={"key": "admin"},
                          headers={"Authorization": f"Bearer {env['keys']['free']}"})
    assert forbidden.status_code == 403
    bad = httpx.get(env["server"].base_url + "/usage", params={"group_by": "week"},
                    headers={"Authorization": f"Bearer {env['keys']['admin']}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"


def test_files_api(env):
    client = sdk(env, "free")
    data = b'{"a": 1}\n{"b": 2}\n'
    f = client.files.create(file=("data.jsonl", data), purpose="batch")
    validate(f.model_dump(exclude_none=True), "OpenAIFile")
    assert (f.bytes, f.filename, f.purpose, f.status) == (len(data), "data.jsonl", "batch", "processed")
    assert client.files.retrieve(f.id).id == f.id
    assert client.files.content(f.id).content == data
    listed = client.files.list()
    validate(listed.model_dump(exclude_none=True), "ListFilesResponse")
    assert f.id in [x.id for x in listed.data]
    assert f.id not in [x.id for x in sdk(env, "other").files.list().data]       # keys see their own
    with pytest.raises(openai.NotFoundError):
        sdk(env, "other").files.retrieve(f.id)
    deleted = client.files.delete(f.id)
    validate(deleted.model_dump(), "DeleteFileResponse")
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError) as e:
        client.files.retrieve(f.id)
    assert f.id in e.value.message
    assert f.id not in [x.id for x in client.files.list().data]


def test_files_bad_input(env):
    client = sdk(env, "free")
    with pytest.raises(openai.BadRequestError) as e:
        client.files.create(file=("x.jsonl", b"{}"), purpose="pictures")
    assert e.value.param == "purpose"
    with pytest.raises(openai.APIStatusError) as e:
        client.files.create(file=("big.jsonl", b"x" * (MAX_FILE + 1)), purpose="batch")
    assert e.value.status_code == 413 and e.value.code == "file_too_large"
    with pytest.raises(openai.APIStatusError) as e:          # far over: refused before it is read
        client.files.create(file=("huge.jsonl", b"x" * (MAX_FILE * 4)), purpose="batch")
    assert e.value.status_code == 413
    for fid in ("file-doesnotexist", "../../etc/passwd", "file-..%2F"):
        with pytest.raises(openai.NotFoundError):
            client.files.content(fid)
    r = httpx.post(env["server"].base_url + "/files", data={"purpose": "batch"},
                   headers={"Authorization": f"Bearer {env['keys']['free']}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    with pytest.raises(openai.BadRequestError) as e:
        client.files.create(file=("x.jsonl", b"{}"), purpose="batch",
                            expires_after={"anchor": "created_at", "seconds": 10})
    assert e.value.param == "expires_after"
    kept = client.files.create(file=("ok.jsonl", b"{}"), purpose="batch",
                               expires_after={"anchor": "created_at", "seconds": 3600})
    assert kept.bytes == 2 and kept.expires_at - kept.created_at == 3600       # nothing else lost


def _line(cid: str, body: dict | None = None, url: str = "/v1/embeddings") -> str:
    return json.dumps({"custom_id": cid, "method": "POST", "url": url,
                       "body": body or {"model": EMBED, "input": f"text {cid}"}})


def _wait(client: openai.OpenAI, batch_id: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        b = client.batches.retrieve(batch_id)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return b
        assert time.monotonic() < deadline, b
        time.sleep(0.2)


def test_embeddings_batch_with_malformed_lines(env):
    client = sdk(env, "free")
    lines = [_line("ok-1"), "{not json", _line("ok-2"), "", _line("ok-1"),            # duplicate custom_id
             _line("wrong-url", url="/v1/chat/completions"), "[1, 2]",
             _line("bad-body", {"model": EMBED}),                                    # no input: a 400 answer
             _line("no-model", {"model": "nope", "input": "x"}), _line("ok-3")]
    f = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h",
                              metadata={"job": "t1"})
    assert b.status == "validating" and b.metadata == {"job": "t1"}
    validate(b.model_dump(exclude_none=True), "Batch")
    b = _wait(client, b.id)
    validate(b.model_dump(exclude_none=True), "Batch")
    assert b.status == "completed" and b.request_counts.total == 9                # the blank line is no request
    assert (b.request_counts.completed, b.request_counts.failed) == (3, 6)
    out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
    err = [json.loads(x) for x in client.files.content(b.error_file_id).text.splitlines()]
    assert [o["custom_id"] for o in out] == ["ok-1", "ok-2", "ok-3"]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None
               and len(o["response"]["body"]["data"][0]["embedding"]) == 384 for o in out)
    codes = {(e["custom_id"], (e["error"] or {}).get("code") or e["response"]["status_code"]) for e in err}
    assert codes == {(None, "invalid_json"), ("ok-1", "duplicate_custom_id"), ("wrong-url", "invalid_url"),
                     (None, "invalid_request"), ("bad-body", 400), ("no-model", 404)}
    assert len({o["id"] for o in out + err}) == 9
    assert b.usage.input_tokens > 0
    assert client.files.retrieve(b.output_file_id).purpose == "batch_output"
    page = client.batches.list(limit=1)
    validate(page.model_dump(exclude_none=True), "ListBatchesResponse")
    assert page.data[0].id == b.id and page.has_more is False or page.data[0].id == b.id
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(b.id)                  # a completed batch cannot be cancelled


def test_batch_create_bad_input(env):
    client = sdk(env, "free")
    good = client.files.create(file=("in.jsonl", _line("a").encode()), purpose="batch")
    other = client.files.create(file=("in.jsonl", _line("a").encode()), purpose="user_data")
    cases = [({"input_file_id": "file-unknown"}, openai.NotFoundError, "input_file_id"),
             ({"endpoint": "/v1/moderations"}, openai.BadRequestError, "endpoint"),
             ({"input_file_id": other.id}, openai.BadRequestError, "input_file_id"),
             ({"completion_window": "48h"}, openai.BadRequestError, "completion_window")]
    for change, error, param in cases:
        args = {"input_file_id": good.id, "endpoint": "/v1/embeddings", "completion_window": "24h", **change}
        with pytest.raises(error) as e:
            client.batches.create(**args)
        assert e.value.param == param, (change, e.value)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_unknown")
    empty = client.files.create(file=("empty.jsonl", b"\n  \n"), purpose="batch")
    failed = _wait(client, client.batches.create(input_file_id=empty.id, endpoint="/v1/embeddings",
                                                 completion_window="24h").id)
    validate(failed.model_dump(exclude_none=True), "Batch")
    assert failed.status == "failed" and failed.failed_at and failed.errors.data[0].code == "empty_file"
    with pytest.raises(openai.NotFoundError):
        sdk(env, "other").files.retrieve(good.id)


def test_cancel_a_running_batch(env):
    client = sdk(env, "free")
    data = "\n".join(_line(f"r{i}") for i in range(1000)).encode()
    f = client.files.create(file=("many.jsonl", data), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    time.sleep(0.5)
    c = client.batches.cancel(b.id)
    assert c.status in ("cancelling", "cancelled")
    b = _wait(client, b.id)
    assert b.status == "cancelled" and b.cancelled_at and b.request_counts.total == 1000
    done, failed = b.request_counts.completed, b.request_counts.failed
    assert done + failed == 1000 and failed > 0
    err = [json.loads(x) for x in client.files.content(b.error_file_id).text.splitlines()]
    assert len(err) == failed and all(e["error"]["code"] == "batch_cancelled" for e in err)
    if done:
        assert len(client.files.content(b.output_file_id).text.splitlines()) == done


def test_loopback_default_is_no_auth(tmp_path):
    live = LiveServer(["--preload", EMBED], tmp_path)
    try:
        r = httpx.post(live.base_url + "/embeddings", json={"model": EMBED, "input": "x"})
        assert r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers
    finally:
        live.stop()


def test_refuses_a_public_address_without_auth(tmp_path):
    r = subprocess.run([sys.executable, "-m", "omnimini", "serve", "--host", "0.0.0.0", "--port",
                        str(free_port()), "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--auth" in r.stdout


def test_on_postgresql(pg_server, tmp_path):
    """The same server on a real PostgreSQL store: migrations, keys, the limiter, a batch."""
    url = pg_server.fresh_database("http_e2e")
    key = Keys(Store.open(url)).create("pg", rpm=3).secret
    live = LiveServer(["--preload", EMBED, "--auth", "--database-url", url], tmp_path,
                      env={"OMNIMINI_RATE_LIMIT_WINDOW": "30"})
    try:
        client = openai.OpenAI(base_url=live.base_url, api_key=key, max_retries=0, timeout=60)
        f = client.files.create(file=("in.jsonl", "\n".join(_line(f"p{i}") for i in range(3)).encode()),
                                purpose="batch")
        b = _wait(client, client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings",
                                                completion_window="24h").id)
        assert b.status == "completed" and b.request_counts.completed == 3
        for _ in range(3):
            embed(client)                                # batch lines do not count against RPM
        with pytest.raises(openai.RateLimitError):
            embed(client)
        # A usage row is written after its response's last byte: give the last one a moment.
        deadline = time.monotonic() + 10
        while True:
            usage = client._client.get(live.base_url + "/usage", headers={"Authorization": f"Bearer {key}"}).json()
            if usage["data"][0]["requests"] >= 3 + 3 + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert usage["data"][0]["requests"] == 3 + 3 + 1
    finally:
        live.stop()
