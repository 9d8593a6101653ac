"""Is greedy output independent of load? 8 different prompts run alone, then all together.

    flock /tmp/omnimini-llama.lock .venv/bin/python bench/batch_invariance.py [--trials 5] [--multi-turn]
        [--speed 3] [--system] [--engine-opt load_invariant=0]

In-process, through LlamaEngine and its scheduler (no HTTP). Each trial:
  * alone: the prompts one after another (only one sequence in every llama_decode);
  * together: all at once (every sequence in the same steps; prompts prefilled beside decodes);
  * alone-again: one at a time again; each prompt finds its own cells in a slot (a prefix-cache
    hit), checked against the first alone answers too.
Prints how many answers are identical and, where one differs, the first differing token and the
largest |logprob difference| of the chosen tokens before it (how far the arithmetic drifted).
--multi-turn: second turns (the first answer in the prompt) right after the first turn vs in a
fresh engine. --speed N: aggregate tok/s of 1 and of 8 sequences with load_invariant on and off,
engines side by side, measured A B A B, so the fix's cost is a same-run ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from omnimini.engine.base import SamplingParams
from omnimini.engine.llama import LlamaEngine
from omnimini.models.catalog import EMBEDDED_CHAT_SOURCE
from omnimini.models.weights import locate

QUESTIONS = [
    "Explain how a lighthouse lens focuses light.",
    "Write a short story about a cat who learns to swim.",
    "What are three tips for growing tomatoes?",
    "Describe the water cycle to a ten-year-old.",
    "Why is the sky blue? Answer in detail.",
    "List some good habits for learning a new language.",
    "How does a bicycle stay upright when it moves?",
    "Write a polite email asking a neighbour to return a ladder.",
]
SYSTEM_SENTENCE = ("You are a careful assistant for the harbour museum. Answer in plain words, with "
                   "concrete examples, and keep a friendly tone. ")
SYSTEM = SYSTEM_SENTENCE * 3          # --system-repeat changes the count


def messages(q: str, system: bool) -> list[dict]:
    return ([{"role": "system", "content": SYSTEM}] if system else []) + [{"role": "user", "content": q}]


async def run_one(engine: LlamaEngine, prompt: list[int], n: int) -> tuple[list[str], list[float], float]:
    """Greedy, exactly `n` tokens (end-of-generation tokens biased out): (tokens, logprobs, seconds)."""
    params = SamplingParams(max_tokens=n, temperature=0.0, logprobs=True, top_logprobs=0,
                            logit_bias=tuple((t, -100.0) for t in eog_tokens(engine)))
    toks: list[str] = []
    lps: list[float] = []
    t0 = time.perf_counter()
    async for step in engine.generate(prompt, params):
        for info in step.tokens:
            toks.append(info.token)
            lps.append(info.logprob)
    return toks, lps, time.perf_counter() - t0


_EOG: list[int] = []


def eog_tokens(engine: LlamaEngine) -> list[int]:
    import llama_cpp
    if not _EOG:
        _EOG.extend(t for t in range(engine.n_vocab) if llama_cpp.llama_vocab_is_eog(engine._vocab, t))
    return _EOG


def compare(ref, got) -> tuple[bool, int | None, float, int | None]:
    """(identical, first step whose token differs or None, max |logprob diff| of the chosen tokens
    over the steps before it, first step whose logprob differs at all or None)."""
    rt, rl = ref[0], ref[1]
    gt, gl = got[0], got[1]
    first = next((i for i, (a, b) in enumerate(zip(rt, gt)) if a != b), None)
    if first is None and len(rt) != len(gt):
        first = min(len(rt), len(gt))
    upto = first if first is not None else len(rt)
    diffs = [abs(a - b) for a, b in zip(rl[:upto], gl[:upto])]
    moved = next((i for i, d in enumerate(diffs) if d > 0), None)
    return first is None, first, max(diffs, default=0.0), moved


async def trial(engine: LlamaEngine, prompts: list[list[int]], n: int) -> dict:
    alone = [await run_one(engine, p, n) for p in prompts]
    together = await asyncio.gather(*(run_one(engine, p, n) for p in prompts))
    again = [await run_one(engine, p, n) for p in prompts]     # slots now hold these prompts
    out = {}
    for name, res in (("together", together), ("alone-again", again)):
        rows = [compare(a, b) for a, b in zip(alone, res)]
        out[name] = rows
    return out


async def speed(engine: LlamaEngine, prompts: list[list[int]], n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = await run_one(engine, prompts[0], n)
    one = len(r[0]) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    rs = await asyncio.gather(*(run_one(engine, p, n) for p in prompts))
    eight = sum(len(x[0]) for x in rs) / (time.perf_counter() - t0)
    return one, eight


def report(name: str, rows: list[tuple]) -> None:
    detail = ", ".join(f"#{i}: token {r[1]} differs (logprobs from step {r[3]}, by up to {r[2]:.2g})"
                       for i, r in enumerate(rows) if not r[0])
    moved = sum(r[3] is not None for r in rows)
    print(f"{name}: {sum(r[0] for r in rows)}/{len(rows)} identical; logprobs moved in {moved}, by up to "
          f"{max(r[2] for r in rows):.3g}  {detail}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--system", action="store_true", help="give every prompt a shared system prompt")
    ap.add_argument("--system-repeat", type=int, default=3, help="sentences in the system prompt (25 "
                    "tokens each): 15 takes prompts past 64-token chunks and contexts past 256 cells")
    ap.add_argument("--speed", type=int, default=0, help="repetitions of the speed comparison")
    ap.add_argument("--multi-turn", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--engine-opt", action="append", default=[], help="key=value passed to LlamaEngine")
    args = ap.parse_args()
    global SYSTEM
    SYSTEM = SYSTEM_SENTENCE * args.system_repeat
    model = Path(args.model) if args.model else locate(EMBEDDED_CHAT_SOURCE, Path("/nonexistent"))
    opts: dict = {k: (int(v) if v.lstrip("-").isdigit() else v)
            for k, v in (o.split("=", 1) for o in args.engine_opt)}
    engine = LlamaEngine(model, n_ctx=args.n_ctx, n_threads=args.threads, slots=args.slots, **opts)
    prompts = [engine.chat_tokens(messages(q, args.system)) for q in QUESTIONS[:args.slots]]
    print(f"model {model.name}, slots {args.slots}, {args.tokens} tokens, prompts "
          f"{[len(p) for p in prompts]}, opts {opts}", flush=True)

    async def go():
        eng = engine
        totals = {"together": 0, "alone-again": 0}
        for t in range(args.trials):
            res = await trial(eng, prompts, args.tokens)
            for name, rows in res.items():
                totals[name] += sum(r[0] for r in rows)
                report(f"trial {t + 1} {name}", rows)
        n = args.trials * len(prompts)
        if args.trials:
            print(f"TOTAL together {totals['together']}/{n}, alone-again {totals['alone-again']}/{n}", flush=True)
        if args.speed:
            # Decode speed in both modes, engines built side by side and measured A B A B.
            other = LlamaEngine(model, n_ctx=args.n_ctx, n_threads=args.threads, slots=args.slots,
                                **{**opts, "load_invariant": not opts.get("load_invariant", True)})
            figures: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for _ in range(args.speed):
                for e in (eng, other):
                    figures[e.load_invariant].append(await speed(e, prompts, args.tokens))
            for mode, rows in figures.items():
                print(f"SPEED load_invariant={mode}: 1 seq {statistics.median(r[0] for r in rows):.1f} tok/s, "
                      f"{len(prompts)} seqs {statistics.median(r[1] for r in rows):.1f} tok/s "
                      f"(median of {len(rows)}; prefill included)", flush=True)
            await other.close()
        if args.multi_turn:
            # Second turns: the first answer is part of the prompt. Warm: right after the first turn
            # ran alone in this engine (its slot holds the first turn); cold: in a fresh engine.
            firsts = [await run_one(eng, p, args.tokens) for p in prompts]
            seconds = [eng.chat_tokens(messages(q, args.system) + [
                {"role": "assistant", "content": "".join(f[0])}, {"role": "user", "content": "Tell me more."}])
                for q, f in zip(QUESTIONS, firsts)]
            warm = []
            for p, f in zip(seconds, prompts):
                await run_one(eng, f, args.tokens)
                warm.append(await run_one(eng, p, args.tokens))
            await eng.close()
            eng = LlamaEngine(model, n_ctx=args.n_ctx, n_threads=args.threads, slots=1, prompt_cache=0, **opts)
            cold = [await run_one(eng, p, args.tokens) for p in seconds]
            report("second turn, warm slot vs fresh engine", [compare(c, w) for c, w in zip(cold, warm)])
        await eng.close()

    asyncio.run(go())


if __name__ == "__main__":
    main()
