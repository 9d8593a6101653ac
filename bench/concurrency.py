"""Many clients at once: omnimini vs llama-cpp-python's own server vs llama.cpp's llama-server.

    .venv/bin/python bench/concurrency.py [--clients 1,4,8,16] [--max-tokens 64] [--threads 2]
        [--llama-server PATH] [--json out.json] [--markdown out.md]

Every server gets the same GGUF (default: the embedded SmolLM2), the same threads, and for each
level of concurrency C the same load: C streaming clients on loopback, each sending
--requests-per-client chat completions one after another, greedy, with every end-of-generation
token biased out (logit_bias -100) so that every answer is exactly --max-tokens long.

  omnimini       `python -m omnimini serve --parallel C` (continuous batching, C slots)
  llama_cpp      `python -m llama_cpp.server` (llama-cpp-python's server: one request at a time)
  llama-server   llama.cpp's C++ server `--parallel C`, built from the llama.cpp sources vendored
                 in llama-cpp-python's source distribution (bench/README.md says how)
  raw            one client only: llama_cpp.Llama in this process, no HTTP (the floor for C=1)

Reported per server and level: aggregate tokens/s, p50/p99 time to first token, p50/p99
inter-token latency, the server's peak RSS; then ratios omnimini/peer. Then the cached-prompt
test: time to first token of a request whose ~1,500-token system prompt is already cached, against
the same request with a system prompt never seen (a nonce at its start), on omnimini.
"""

from __future__ import annotations

import argparse
import shlex
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import llama_cpp

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "bench-model"
DEFAULT_LLAMA_SERVER = ROOT / "build/peers/llama-server"     # bench/build_llama_server.sh
SYSTEM = "You are a helpful assistant. Answer in detail."
TOPICS = ["lighthouses", "bread", "glaciers", "bicycles", "volcanoes", "libraries", "bees", "trains",
          "tides", "violins", "maps", "comets", "coffee", "bridges", "owls", "clocks"]
# A long system prompt for the cache test: ~1,500 tokens of policy-like text.
LONG_SYSTEM_LINE = ("Rule {i}: when a customer asks about order {i}, check the ledger, confirm the "
                    "address, and answer politely with the delivery window and the refund policy. ")
START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Server:
    def __init__(self, kind: str, gguf: Path, threads: int, parallel: int, n_ctx: int, llama_server: Path,
                 tmp: Path, extra: list[str] = ()):
        self.kind, port = kind, free_port()
        self.base = f"http://127.0.0.1:{port}"
        if kind == "omnimini":
            # The engine as the peers run it: no instruction-hierarchy policy, whose default (`full`)
            # adds a ~70-token statement to each system message and holds back streamed text for the
            # output guard (docs/hierarchy.md measures those separately).
            models = tmp / "bench-models.yaml"
            models.write_text(json.dumps({"models": [{"id": MODEL_NAME, "path": str(gguf), "hierarchy": "none",
                                                      "context_length": n_ctx}]}))
            cmd = [sys.executable, "-m", "omnimini", "serve", "--port", str(port), "--threads", str(threads),
                   "--parallel", str(parallel), "--data-dir", str(tmp), "--models-file", str(models),
                   "--preload", MODEL_NAME, "--log-level", "warning", "--queue-size", "1024", *extra]
        elif kind == "llama_cpp":
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
                   "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
                   "--n_ctx", str(n_ctx),
                   # by default a new request cuts off the one streaming: queue them instead
                   "--interrupt_requests", "False"]
        else:   # llama.cpp's server: n_ctx is split among the slots, so give it n_ctx per slot
            cmd = [str(llama_server), "-m", str(gguf), "--port", str(port), "-t", str(threads), "-tb",
                   str(threads), "--parallel", str(parallel), "-c", str(n_ctx * parallel), "--alias", MODEL_NAME,
                   "--no-webui", "-fa", "off"]
        self.log_path = tmp / f"{kind}-{port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.base + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start")
            time.sleep(0.3)

    def stop(self) -> float:
        rss = peak_rss_mb(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        return rss


def eog_bias(gguf: Path) -> dict[str, int]:
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return {str(t): -100 for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}


async def one_request(http: httpx.AsyncClient, base: str, messages: list[dict], max_tokens: int,
                      bias: dict[str, int]) -> dict[str, Any]:
    body = {"model": MODEL_NAME, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "logit_bias": bias}
    t0 = time.perf_counter()
    arrivals: list[float] = []
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for c in chunk.get("choices") or []:
                if (c.get("delta") or {}).get("content"):
                    arrivals.append(time.perf_counter())
    if not arrivals:
        raise RuntimeError("no content streamed")
    return {"ttft": arrivals[0] - t0, "itl": [b - a for a, b in zip(arrivals, arrivals[1:])],
            "chunks": len(arrivals), "end": arrivals[-1]}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def load(base: str, clients: int, per_client: int, max_tokens: int, bias: dict[str, int]) -> dict:
    # A new connection for every request, on every server: llama-server closes an idle keep-alive
    # connection on its own schedule, and a request sent on one it just closed fails ("Server
    # disconnected without sending a response"). A loopback connect costs well under a millisecond.
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        # One warm-up request loads everything and fills caches the same way on every server.
        await one_request(http, base, [{"role": "user", "content": "Hello"}], 4, bias)

        async def client(i: int) -> list[dict]:
            out = []
            for k in range(per_client):
                topic = TOPICS[(i * per_client + k) % len(TOPICS)]
                msgs = [{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"Tell me everything about {topic} (#{i}.{k})."}]
                out.append(await one_request(http, base, msgs, max_tokens, bias))
            return out

        t0 = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(client(i) for i in range(clients))) for r in rs]
        wall = max(r["end"] for r in results) - t0
    tokens = len(results) * max_tokens
    ttft = [r["ttft"] for r in results]
    itl = [x for r in results for x in r["itl"]]
    return {"requests": len(results), "tokens": tokens, "wall_s": wall, "tok_s": tokens / wall,
            "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99), "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99),
            "chunks_per_request": statistics.mean(r["chunks"] for r in results)}


async def cached_ttft(base: str, bias: dict[str, int], reps: int) -> dict:
    long_system = "".join(LONG_SYSTEM_LINE.format(i=i) for i in range(48))
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        cold, warm = [], []
        for k in range(reps):
            system = f"[{random.random():.12f}] " + long_system       # never seen: computed in full
            msgs = [{"role": "system", "content": system}, {"role": "user", "content": f"Order {k}?"}]
            cold.append((await one_request(http, base, msgs, 2, bias))["ttft"])
            other = [{"role": "system", "content": system}, {"role": "user", "content": f"And order {k + 1}?"}]
            warm.append((await one_request(http, base, other, 2, bias))["ttft"])
        r = await http.post(base + "/v1/chat/completions", json={
            "model": MODEL_NAME, "max_tokens": 1, "messages": msgs})
        prompt_tokens = r.json()["usage"]["prompt_tokens"]
    return {"prompt_tokens": prompt_tokens, "cold_ttft": statistics.median(cold),
            "cached_ttft": statistics.median(warm), "ratio": statistics.median(warm) / statistics.median(cold)}


def raw_single(gguf: Path, threads: int, n_ctx: int, max_tokens: int, reps: int, bias: dict[str, int]) -> dict:
    llm = llama_cpp.Llama(model_path=str(gguf), n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx,
                          verbose=False)
    results = []
    for k in range(reps):
        msgs = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Tell me everything about {TOPICS[k % len(TOPICS)]} (#0.{k})."}]
        t0 = time.perf_counter()
        arrivals = []
        for chunk in llm.create_chat_completion(msgs, max_tokens=max_tokens, temperature=0, stream=True,
                                                logit_bias={int(t): float(b) for t, b in bias.items()}):
            if chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter())
        results.append({"ttft": arrivals[0] - t0, "end": arrivals[-1], "start": t0,
                        "itl": [b - a for a, b in zip(arrivals, arrivals[1:])]})
    wall = sum(r["end"] - r["start"] for r in results)
    ttft = [r["ttft"] for r in results]
    itl = [x for r in results for x in r["itl"]]
    return {"requests": reps, "tokens": reps * max_tokens, "wall_s": wall, "tok_s": reps * max_tokens / wall,
            "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99), "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99),
            "peak_rss_mb": float("nan")}


def markdown(results: dict, args: argparse.Namespace) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [f"Machine: {cpu}, {os.cpu_count()} cores, {args.threads} threads per server; model "
             f"{Path(args.gguf).name}; {args.max_tokens} tokens per answer, greedy; "
             f"{args.requests_per_client} requests per client.", "",
             "| clients | server | tok/s | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | peak RSS (MB) | omnimini / this |",
             "|---|---|---|---|---|---|---|"]
    for c, row in results["levels"].items():
        ours = row.get("omnimini", {}).get("tok_s")
        for kind, r in row.items():
            ratio = f"{ours / r['tok_s']:.2f}x" if ours and kind != "omnimini" else ""
            reps = results.get("ratios", {}).get(c, {}).get(kind, [])
            if len(reps) > 1:        # the median of the paired per-rep ratios, and their spread
                ratio = f"{statistics.median(reps):.2f}x ({min(reps):.2f}-{max(reps):.2f}, {len(reps)} reps)"
            lines.append(f"| {c} | {kind} | {r['tok_s']:.1f} | {r['ttft_p50'] * 1e3:.0f} / {r['ttft_p99'] * 1e3:.0f} | "
                         f"{r['itl_p50'] * 1e3:.1f} / {r['itl_p99'] * 1e3:.1f} | {r['peak_rss_mb']:.0f} | {ratio} |")
    if "cache" in results:
        k = results["cache"]
        lines += ["", f"Cached system prompt ({k['prompt_tokens']} prompt tokens): TTFT {k['cached_ttft'] * 1e3:.0f} ms "
                  f"cached vs {k['cold_ttft'] * 1e3:.0f} ms uncached: ratio {k['ratio']:.3f} (target at most 0.1)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    from omnimini.models.weights import embedded_gguf_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=str(embedded_gguf_path()))
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048, help="context per slot")
    ap.add_argument("--servers", default="omnimini,llama_cpp,llama-server")
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER", str(DEFAULT_LLAMA_SERVER)))
    ap.add_argument("--cache-reps", type=int, default=3, help="0 skips the cached-prefix measurement")
    ap.add_argument("--omnimini-args", default="", help="extra `omnimini serve` flags, e.g. "
                    "'--no-load-invariant' (shell-quoted)")
    ap.add_argument("--reps", type=int, default=1, help="runs of each level (servers in a new random order "
                    "each time); figures are medians, ratios the median of the paired per-rep ratios")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    gguf = Path(args.gguf)
    bias = eog_bias(gguf)
    kinds = args.servers.split(",")
    if "llama-server" in kinds and not Path(args.llama_server).exists():
        print(f"llama-server not found at {args.llama_server}: skipped (see bench/README.md to build it)")
        kinds.remove("llama-server")
    if "llama_cpp" in kinds:
        try:
            import llama_cpp.server.app  # noqa: F401
        except ImportError as e:
            print(f"llama_cpp.server cannot start ({e}); pip install 'llama-cpp-python[server]': skipped")
            kinds.remove("llama_cpp")
    results: dict[str, Any] = {"levels": {}, "ratios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for c in [int(x) for x in args.clients.split(",")]:
            reps = [run_level(c, kinds, gguf, bias, args, Path(tmp), results) for _ in range(args.reps)]
            row = {kind: median_figures([r[kind] for r in reps]) for kind in reps[0]}
            results["levels"][c] = {k: row[k] for k in (["omnimini"] if "omnimini" in row else [])
                                    + [k for k in row if k != "omnimini"]}
            if "omnimini" in row:
                results["ratios"][c] = {kind: [r["omnimini"]["tok_s"] / r[kind]["tok_s"] for r in reps]
                                        for kind in row if kind != "omnimini"}
                for kind, ratios in results["ratios"][c].items():
                    print(f"      omnimini / {kind}: median {statistics.median(ratios):.2f}x over "
                          f"{len(ratios)} reps ({', '.join(f'{x:.2f}' for x in ratios)})")
    if "cache" in results:
        k = results["cache"]
        print(f"cached {k['prompt_tokens']}-token prompt: TTFT {k['cached_ttft'] * 1e3:.0f} ms vs "
              f"{k['cold_ttft'] * 1e3:.0f} ms uncached, ratio {k['ratio']:.3f}")
    md = markdown(results, args)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(md)


def median_figures(reps: list[dict]) -> dict:
    """Each figure of one server at one level: its median over the reps."""
    return {k: statistics.median(r[k] for r in reps) for k in reps[0] if isinstance(reps[0][k], (int, float))}


def run_level(c: int, kinds: list[str], gguf: Path, bias: dict[str, int], args: argparse.Namespace, tmp: Path,
              results: dict) -> dict[str, Any]:
    """One rep at `c` clients: every server in turn, in random order, each started fresh."""
    row: dict[str, Any] = {}
    for kind in random.sample(kinds, len(kinds)):          # no server always goes first
        srv = Server(kind, gguf, args.threads, c, args.n_ctx, Path(args.llama_server), Path(tmp),
                     shlex.split(args.omnimini_args))
        try:
            row[kind] = asyncio.run(load(srv.base, c, args.requests_per_client, args.max_tokens, bias))
            if kind == "omnimini" and c == 1 and args.cache_reps > 0:
                results["cache"] = asyncio.run(cached_ttft(srv.base, bias, args.cache_reps))
        except Exception:
            srv.log.flush()
            print(f"{kind} failed; the end of its log:\n{srv.log_path.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            row.setdefault(kind, {})["peak_rss_mb"] = srv.stop()
        r = row[kind]
        print(f"C={c:<3} {kind:<13} {r['tok_s']:7.1f} tok/s  TTFT p50 {r['ttft_p50'] * 1e3:6.0f} ms "
              f"p99 {r['ttft_p99'] * 1e3:6.0f}  ITL p50 {r['itl_p50'] * 1e3:5.1f} ms p99 "
              f"{r['itl_p99'] * 1e3:6.1f}  RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if c == 1:
        row["raw (in-process)"] = raw_single(gguf, args.threads, args.n_ctx, args.max_tokens,
                                             max(2, args.requests_per_client), bias)
        print(f"C=1   raw           {row['raw (in-process)']['tok_s']:7.1f} tok/s", flush=True)
    ours = row.get("omnimini", {}).get("tok_s")
    for kind, r in row.items():
        if ours and kind != "omnimini":
            print(f"      omnimini / {kind}: {ours / r['tok_s']:.2f}x")
    return row


if __name__ == "__main__":
    main()
