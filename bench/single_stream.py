"""Single-stream decode speed and time-to-first-token: omnimini over HTTP vs raw llama-cpp-python.

    .venv/bin/python bench/single_stream.py [--threads 2] [--max-tokens 200] [--reps 5] [--json out.json]

(a) omnimini: `python -m omnimini serve` runs as a subprocess; each run streams
    POST /v1/chat/completions with httpx, so HTTP, SSE framing and JSON are all counted.
(b) raw: `llama_cpp.Llama(...)` in this process, `create_completion(prompt=<token ids>, stream=True)`.

What makes the two sides comparable (see bench/README.md):
  * the same GGUF, n_ctx, n_threads/n_threads_batch and n_batch (512, llama-cpp-python's default and
    omnimini's N_BATCH);
  * the same prompt token ids: the chat request is rendered and tokenized by omnimini's own
    `ChatService.prepare` (the server's code path) in this process, and the server's
    `usage.prompt_tokens` is checked against it;
  * greedy decoding, and a fixed length: every end-of-generation token of the vocabulary
    (llama_vocab_is_eog) gets logit bias -100 on both sides, max_tokens is the same, and the number
    of generated tokens is verified on both sides;
  * the same KV-prefix situation: every repetition uses a new nonce at the very start of the system
    message (same nonce on both sides), so neither side can reuse more than the first few template
    tokens ("cold"); right after, the identical request is sent again with max_tokens=1 ("warm":
    both sides reuse all but the last prompt token). The reused prefix is reported for each side;
  * runs alternate A B A B ..., never overlap, and start after a short pause (--settle).

Decode tok/s = (tokens after the first) / (arrival of last content token - arrival of first).
TTFT = request sent (raw: create_completion called) -> first non-empty content received.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import llama_cpp
from llama_cpp import _internals

ROOT = Path(__file__).resolve().parents[1]
BENCH_ALIAS = "bench-model"          # the server's name for a --model-path that is not the embedded one

SYSTEM = ("[{nonce}] You are a helpful, knowledgeable assistant. Answer carefully and in detail, "
          "using plain language and concrete examples.")
USER = ("I am preparing a short talk for a local library about how lighthouses work and why they "
        "mattered so much to sailors before satellite navigation. Please write a long, detailed "
        "explanation that covers the lamp and the lens, how lighthouse keepers lived and worked, how "
        "ships told one lighthouse from another at night, and a few famous lighthouses with their "
        "stories. Use several paragraphs.")


# ---------------------------------------------------------------------------------------- records

@dataclass
class Run:
    system: str                  # "omnimini" | "raw"
    kind: str                    # "cold" | "warm"
    rep: int                     # < 0: warm-up
    ttft_s: float
    n_tokens: int                # generated tokens, as counted by the system itself
    n_chunks: int                # non-empty content deltas received
    decode_tps: float | None     # (n_tokens - 1) / (t_last - t_first)
    gap_tps: float | None        # 1 / median inter-chunk gap: robust to one-off stalls
    max_gap_ms: float | None
    prompt_tokens: int
    reused_tokens: int           # KV prefix the system reused from its previous request
    loop_cpu_s: float | None = None     # omnimini: CPU of the server's event-loop thread in this run
    client_cpu_s: float | None = None   # omnimini: CPU of this process (the HTTP client) in this run
    text: str = field(repr=False, default="")


def _timing(t0: float, times: list[float], n_tokens: int) -> dict[str, Any]:
    if not times:
        return {"ttft_s": float("nan"), "decode_tps": None, "gap_tps": None, "max_gap_ms": None}
    gaps = [b - a for a, b in zip(times, times[1:])]
    span = times[-1] - times[0]
    return {"ttft_s": times[0] - t0,
            "decode_tps": (n_tokens - 1) / span if n_tokens > 1 and span > 0 else None,
            "gap_tps": 1.0 / statistics.median(gaps) if gaps and statistics.median(gaps) > 0 else None,
            "max_gap_ms": max(gaps) * 1e3 if gaps else None}


# ---------------------------------------------------------------------------------------- omnimini side

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _thread_cpu(pid: int, tid: int) -> float | None:
    """utime + stime of one thread (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class Server:
    def __init__(self, *, threads: int, n_ctx: int, data_dir: Path, model_flag: str | None,
                 model_name: str, log_path: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [_python(), "-m", "omnimini", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--threads", str(threads), "--data-dir", str(data_dir), "--context-size", str(n_ctx),
               "--log-level", "warning"]
        if model_flag:
            cmd += ["--model", model_flag, "--preload", model_name]
        self.cmd = cmd
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_healthy(self, timeout: float = 180.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def run_omnimini(client: httpx.Client, server: Server, body: dict[str, Any], rep: int, kind: str) -> Run:
    times: list[float] = []
    parts: list[str] = []
    usage: dict[str, Any] | None = None
    pid = server.proc.pid
    loop0, client0 = _thread_cpu(pid, pid), time.process_time()   # the main thread runs the event loop
    t0 = time.perf_counter()
    with client.stream("POST", server.base + "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read().decode(errors='replace')}")
        for line in r.iter_lines():
            t = time.perf_counter()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(f"in-band error: {event['error']}")
            for choice in event.get("choices", ()):
                content = choice.get("delta", {}).get("content")
                if content:
                    times.append(t)
                    parts.append(content)
            if event.get("usage"):
                usage = event["usage"]
    loop1, client1 = _thread_cpu(pid, pid), time.process_time()
    if usage is None:
        raise RuntimeError("no usage chunk in the stream (stream_options.include_usage ignored?)")
    n = usage["completion_tokens"]
    return Run("omnimini", kind, rep, n_tokens=n, n_chunks=len(times), prompt_tokens=usage["prompt_tokens"],
               reused_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
               loop_cpu_s=None if loop0 is None or loop1 is None else loop1 - loop0,
               client_cpu_s=client1 - client0, text="".join(parts), **_timing(t0, times, n))


async def _omnimini_prompts(model_flag: str | None, model_name: str, threads: int, n_ctx: int,
                            data_dir: Path, requests: list[dict[str, Any]]) -> tuple[list[list[int]], int]:
    """Prompt token ids exactly as the server computes them: omnimini's ChatService.prepare."""
    from omnimini.protocol.chat import ChatCompletionRequest
    from omnimini.service.runtime import Runtime
    from omnimini.settings import Settings

    settings = Settings(models=[model_flag] if model_flag else [], threads=threads, context_size=n_ctx,
                        data_dir=data_dir)
    runtime = Runtime.build(settings.catalog(), data_dir=settings.data_path, n_threads=threads,
                            context_size=n_ctx)
    try:
        prompts, engine_ctx = [], 0
        for body in requests:
            prepared = await runtime.chat.prepare(ChatCompletionRequest.model_validate(body))
            prompts.append(list(prepared.prompt))
            engine_ctx = prepared.engine.n_ctx
        return prompts, engine_ctx
    finally:
        await runtime.close()


# ---------------------------------------------------------------------------------------- raw side

class RawLlama(llama_cpp.Llama):
    """llama_cpp.Llama, plus two things the benchmark needs and nothing else:

    * a count of sampled tokens (`sampled`), so the generated length is verified, not inferred;
    * with `c_logit_bias` set, greedy sampling gets the bias as llama.cpp's own logit-bias sampler at
      the head of the chain ([logit_bias, penalties(no-op), greedy]) instead of the Python
      logits-processor that `create_completion(logit_bias=...)` installs (a full-vocabulary numpy
      copy per token). omnimini's chain is [logit_bias, greedy], also in C, so this removes a
      per-token cost that only the raw side would pay. `--raw-bias kwarg` uses the public kwarg instead.
    """

    c_logit_bias: dict[int, float] | None = None
    sampled = 0

    def _init_sampler(self, **kw: Any) -> Any:  # type: ignore[override]
        if not self.c_logit_bias or kw.get("temp", 0.8) != 0.0 or kw.get("logits_processor") \
                or kw.get("grammar") is not None:
            return super()._init_sampler(**kw)
        s = _internals.LlamaSampler()
        s.add_logit_bias(self._n_vocab, self.c_logit_bias)
        s.add_penalties(n_vocab=self._n_vocab, penalty_last_n=self.last_n_tokens_size,
                        penalty_repeat=kw.get("repeat_penalty", 1.0),
                        penalty_freq=kw.get("frequency_penalty", 0.0),
                        penalty_present=kw.get("presence_penalty", 0.0))
        s.add_greedy()
        return s

    def sample(self, *args: Any, **kw: Any) -> int:  # type: ignore[override]
        self.sampled += 1
        return super().sample(*args, **kw)


def _eog_tokens(llm: llama_cpp.Llama) -> list[int]:
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]


def _raw_reuse(llm: llama_cpp.Llama, prompt: list[int]) -> int:
    """The KV prefix Llama.generate will keep for `prompt` (its own prefix-match rule)."""
    cached = llm.input_ids[:llm.n_tokens].tolist()
    lcp = 0
    for a, b in zip(cached, prompt):
        if a != b:
            break
        lcp += 1
    if lcp == len(prompt):
        return lcp if llm.n_tokens == len(prompt) else lcp - 1
    return lcp


def run_raw(llm: RawLlama, prompt: list[int], max_tokens: int, bias: dict[int, float] | None,
            rep: int, kind: str) -> Run:
    reused = _raw_reuse(llm, prompt)
    times: list[float] = []
    parts: list[str] = []
    llm.sampled = 0
    t0 = time.perf_counter()
    for chunk in llm.create_completion(prompt=prompt, max_tokens=max_tokens, temperature=0.0, top_p=1.0,
                                       top_k=0, min_p=0.0, repeat_penalty=1.0, stream=True, seed=0,
                                       logit_bias=bias):
        t = time.perf_counter()
        text = chunk["choices"][0]["text"]
        if text:
            times.append(t)
            parts.append(text)
    n = llm.sampled
    return Run("raw", kind, rep, n_tokens=n, n_chunks=len(times), prompt_tokens=len(prompt),
               reused_tokens=reused, text="".join(parts), **_timing(t0, times, n))


# ---------------------------------------------------------------------------------------- report

def _stats(xs: list[float]) -> dict[str, float] | None:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _fmt(st: dict[str, float] | None, scale: float = 1.0, unit: str = "") -> str:
    if not st:
        return "n/a"
    return (f"{st['median'] * scale:8.1f}{unit} [{st['min'] * scale:.1f}..{st['max'] * scale:.1f}]")


def _first_diff(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b)) if len(a) != len(b) else -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="n_threads and n_threads_batch, both sides")
    ap.add_argument("--max-tokens", type=int, default=200, help="tokens generated per cold run")
    ap.add_argument("--reps", type=int, default=5, help="measured repetitions per system")
    ap.add_argument("--warmup", type=int, default=1, help="discarded rounds before measuring")
    ap.add_argument("--model-path", type=Path, default=None, help="GGUF (default: the embedded model)")
    ap.add_argument("--n-ctx", type=int, default=4096, help="context size, both sides "
                    "(the server gets --context-size)")
    ap.add_argument("--raw-bias", choices=["c", "kwarg"], default="c",
                    help="how raw bans end-of-generation tokens: llama.cpp's C logit-bias sampler "
                    "(same as omnimini; default) or create_completion(logit_bias=...)'s Python processor")
    ap.add_argument("--settle", type=float, default=0.2, help="seconds of quiet before each run, so the "
                    "other system's threads (llama.cpp workers poll for a while after a graph) are idle")
    ap.add_argument("--seed", type=int, default=0, help="seed of the nonces")
    ap.add_argument("--json", type=Path, default=None, help="write all runs and the summary here")
    args = ap.parse_args()
    # SIGTERM/SIGHUP unwind through the finally below, so the server subprocess never outlives us.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    from omnimini.models.weights import embedded_gguf_path

    embedded = embedded_gguf_path().resolve()
    model_path = (args.model_path or embedded).expanduser().resolve()
    if model_path == embedded:
        model_flag, model_name = None, "omnimini-mini"
    else:
        model_flag, model_name = f"{model_path}={BENCH_ALIAS}", BENCH_ALIAS

    rng = random.Random(args.seed)
    n_rounds = args.warmup + args.reps
    nonces = [f"{i % 9 + 1}{rng.randrange(10 ** 6):06d}" for i in range(n_rounds)]
    messages = [[{"role": "system", "content": SYSTEM.format(nonce=n)}, {"role": "user", "content": USER}]
                for n in nonces]

    tmp = Path(tempfile.mkdtemp(prefix="omnimini-bench-"))
    print(f"model       {model_path}")
    print(f"threads     {args.threads} (cpu_count {os.cpu_count()}), n_ctx {args.n_ctx}, "
          f"max_tokens {args.max_tokens}, reps {args.reps} (+{args.warmup} warm-up), raw bias: {args.raw_bias}")

    # The raw model: built first, so the vocabulary's end-of-generation tokens are known.
    t = time.perf_counter()
    llm = RawLlama(model_path=str(model_path), n_ctx=args.n_ctx, n_threads=args.threads,
                   n_threads_batch=args.threads, verbose=False)
    raw_load = time.perf_counter() - t
    eog = _eog_tokens(llm)
    ban = {tok: -100.0 for tok in eog}
    if args.raw_bias == "c":
        llm.c_logit_bias = ban
    raw_bias_kwarg = ban if args.raw_bias == "kwarg" else None
    eog_text = ", ".join(f"{tok}={llm.detokenize([tok], special=True).decode(errors='replace')!r}"
                         for tok in eog)
    print(f"banned      end-of-generation tokens {eog_text} (logit bias -100, both sides)")

    def body(msgs: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        return {"model": model_name, "messages": msgs, "max_tokens": max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True},
                "logit_bias": {str(tok): -100 for tok in eog}}

    # Prompt ids through omnimini's own request path (template, hierarchy, tokenizer).
    prompts, engine_ctx = asyncio.run(_omnimini_prompts(model_flag, model_name, args.threads, args.n_ctx,
                                                        tmp, [body(m, args.max_tokens) for m in messages]))
    gc.collect()
    if engine_ctx != llm.n_ctx():
        print(f"WARNING: n_ctx differs: omnimini {engine_ctx} vs raw {llm.n_ctx()}")
    print(f"prompt      {len(prompts[0])} tokens (rendered by omnimini's ChatService), "
          f"n_ctx omnimini {engine_ctx} / raw {llm.n_ctx()}")

    server = Server(threads=args.threads, n_ctx=args.n_ctx, data_dir=tmp, model_flag=model_flag,
                    model_name=model_name, log_path=tmp / "server.log")
    runs: list[Run] = []
    problems: list[str] = []
    try:
        ready = server.wait_healthy()
        print(f"server      healthy after {ready:.1f}s on {server.base} (raw model load {raw_load:.2f}s)")
        with httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0)) as client:
            for i in range(n_rounds):
                rep = i - args.warmup
                msgs, prompt = messages[i], prompts[i]
                order = ("omnimini", "raw")      # A B A B ...: the systems alternate, never overlap
                for system in order:
                    time.sleep(args.settle)
                    if system == "omnimini":
                        cold = run_omnimini(client, server, body(msgs, args.max_tokens), rep, "cold")
                        time.sleep(args.settle)
                        warm = run_omnimini(client, server, body(msgs, 1), rep, "warm")
                    else:
                        cold = run_raw(llm, prompt, args.max_tokens, raw_bias_kwarg, rep, "cold")
                        time.sleep(args.settle)
                        warm = run_raw(llm, prompt, 1, raw_bias_kwarg, rep, "warm")
                    runs += [cold, warm]
                    for r in (cold, warm):
                        want = args.max_tokens if r.kind == "cold" else 1
                        if r.n_tokens != want:
                            problems.append(f"{r.system} rep {rep} {r.kind}: {r.n_tokens} tokens, wanted {want}")
                        if r.prompt_tokens != len(prompt):
                            problems.append(f"{r.system} rep {rep} {r.kind}: prompt {r.prompt_tokens} "
                                            f"tokens, expected {len(prompt)}")
                oc, ow, rc, rw = runs[-4:]
                tag = "warm-up" if rep < 0 else f"rep {rep}"
                print(f"{tag:8s} cold: omnimini {oc.decode_tps or 0:6.1f} tok/s ttft {oc.ttft_s * 1e3:6.1f} ms "
                      f"(reused {oc.reused_tokens}) | raw {rc.decode_tps or 0:6.1f} tok/s ttft "
                      f"{rc.ttft_s * 1e3:6.1f} ms (reused {rc.reused_tokens}) | warm ttft "
                      f"{ow.ttft_s * 1e3:5.1f} / {rw.ttft_s * 1e3:5.1f} ms", flush=True)
    except Exception:
        print(f"server log tail:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    measured = [r for r in runs if r.rep >= 0]

    def pick(system: str, kind: str, attr: str) -> list[float]:
        return [getattr(r, attr) for r in measured if r.system == system and r.kind == kind]

    summary: dict[str, Any] = {}
    for system in ("omnimini", "raw"):
        summary[system] = {
            "decode_tps": _stats(pick(system, "cold", "decode_tps")),
            "gap_tps": _stats(pick(system, "cold", "gap_tps")),
            "ttft_cold_s": _stats(pick(system, "cold", "ttft_s")),
            "ttft_warm_s": _stats(pick(system, "warm", "ttft_s")),
            "reused_cold": _stats(pick(system, "cold", "reused_tokens")),
            "reused_warm": _stats(pick(system, "warm", "reused_tokens")),
        }

    def ratio(key: str) -> float | None:
        a, b = summary["omnimini"][key], summary["raw"][key]
        return a["median"] / b["median"] if a and b and b["median"] else None

    o_cold = [r for r in measured if r.system == "omnimini" and r.kind == "cold"]
    r_cold = [r for r in measured if r.system == "raw" and r.kind == "cold"]
    paired = [a.decode_tps / b.decode_tps for a, b in zip(o_cold, r_cold) if a.decode_tps and b.decode_tps]
    matches = [_first_diff(a.text, b.text) for a, b in zip(o_cold, r_cold)]
    summary["ratios"] = {"decode_tps": ratio("decode_tps"), "gap_tps": ratio("gap_tps"),
                         "ttft_cold": ratio("ttft_cold_s"), "ttft_warm": ratio("ttft_warm_s"),
                         "decode_tps_paired_median": statistics.median(paired) if paired else None}
    summary["greedy_text_match"] = sum(m == -1 for m in matches)
    toks = sum(r.n_tokens for r in o_cold)
    loop_cpu = [r.loop_cpu_s for r in o_cold]
    summary["omnimini_cpu_ms_per_token"] = {
        "server_event_loop": None if not toks or None in loop_cpu else sum(loop_cpu) / toks * 1e3,
        "bench_http_client": sum(r.client_cpu_s or 0.0 for r in o_cold) / toks * 1e3 if toks else None}
    summary["problems"] = problems

    print()
    print(f"{'median [min..max] over ' + str(args.reps) + ' reps':34s} {'omnimini (HTTP+SSE)':>26s} "
          f"{'raw llama-cpp-python':>26s}  ratio o/r")
    rows = [("decode tok/s", "decode_tps", 1, ""), ("  1/median token gap, tok/s", "gap_tps", 1, ""),
            (f"TTFT cold ({len(prompts[0])}-token prefill), ms", "ttft_cold_s", 1e3, ""),
            ("TTFT warm (1-token prefill), ms", "ttft_warm_s", 1e3, ""),
            ("reused KV prefix, cold", "reused_cold", 1, ""), ("reused KV prefix, warm", "reused_warm", 1, "")]
    for label, key, scale, unit in rows:
        a, b = summary["omnimini"][key], summary["raw"][key]
        rt = a["median"] / b["median"] if a and b and b["median"] else None
        print(f"{label:34s} {_fmt(a, scale, unit):>26s} {_fmt(b, scale, unit):>26s}  "
              f"{'' if rt is None else f'{rt:.3f}'}")
    print(f"paired per-rep decode ratios: {', '.join(f'{p:.3f}' for p in paired)}")
    cpu = summary["omnimini_cpu_ms_per_token"]
    if cpu["bench_http_client"] is not None:
        loop_ms = "n/a" if cpu["server_event_loop"] is None else f"{cpu['server_event_loop']:.2f}"
        print(f"omnimini CPU outside llama.cpp per token: server event-loop thread {loop_ms} ms, "
              f"this HTTP client {cpu['bench_http_client']:.2f} ms (on a box with no spare core, this "
              f"work competes with llama.cpp's threads)")
    diverged = [f"rep {i}: char {m}" for i, m in enumerate(matches) if m != -1]
    print(f"greedy texts identical: {summary['greedy_text_match']}/{len(matches)}"
          + (f" (first difference at {'; '.join(diverged)})" if diverged else ""))
    if problems:
        print("PROBLEMS (the comparison is not valid as it stands):\n  " + "\n  ".join(problems))
    else:
        print(f"checks: both sides generated {args.max_tokens} tokens every cold run and 1 every warm run; "
              f"server prompt_tokens == {len(prompts[0])} local ids every run")

    s, r = summary["omnimini"], summary["raw"]
    dr, tc, tw = summary["ratios"]["decode_tps"], summary["ratios"]["ttft_cold"], summary["ratios"]["ttft_warm"]
    print()
    if dr is not None:
        print(f"decode tok/s: omnimini {s['decode_tps']['median']:.1f} vs raw {r['decode_tps']['median']:.1f} "
              f"-> ratio {dr:.3f} (target >= 0.95) {'PASS' if dr >= 0.95 else 'BELOW TARGET'}")
    if tc is not None and tw is not None:
        print(f"TTFT cold: omnimini {s['ttft_cold_s']['median'] * 1e3:.1f} ms vs raw "
              f"{r['ttft_cold_s']['median'] * 1e3:.1f} ms -> ratio {tc:.3f} (lower is better); "
              f"warm: {s['ttft_warm_s']['median'] * 1e3:.1f} vs {r['ttft_warm_s']['median'] * 1e3:.1f} ms "
              f"-> ratio {tw:.3f}")

    if args.json:
        out = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "env": {"model_path": str(model_path), "llama_cpp_python": llama_cpp.__version__,
                       "python": platform.python_version(), "cpu_count": os.cpu_count(),
                       "platform": platform.platform(), "server_cmd": server.cmd},
               "prompt_tokens": len(prompts[0]), "eog_tokens": eog, "summary": summary,
               "runs": [asdict(r) for r in runs]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
