"""The llama.cpp backend: one model, one context, one worker thread that owns them.

Generation runs our own decode loop over llama.cpp's low-level API instead of `Llama.create_completion`:
sampling happens in llama.cpp's C sampler chain (fast), logprobs are computed from the raw logits of
the last position only (llama-cpp-python's own path needs `logits_all=True`, a full vocabulary row
per prompt token), and KV cells are reused for shared prompt prefixes.
Scheduling (which sequences go into each `llama_decode`) lives in `engine/scheduler.py`.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import queue
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

import llama_cpp
import numpy as np

from omnimini.engine.base import Engine, EngineError, Hold, Piece, SamplingParams, Step, TokenInfo
from omnimini.engine.scheduler import Scheduler
from omnimini.engine.template import CHATML_TEMPLATE, ChatTemplate
from omnimini.engine.textstream import TextStream
from omnimini.engine.vision import ImageSpan, MediaPrompt, VisionProjector, placeholders
from omnimini.protocol.errors import RateLimitExceeded

log = logging.getLogger(__name__)

N_BATCH = 512                  # tokens per llama_decode call (decode steps plus prefill chunks)
# Sequences decoded together. Each slot holds a KV buffer of n_ctx cells, so memory grows with it;
# `--parallel N` buys throughput under load (MODELS.md: 1 sequence 117 tok/s, 8 sequences 174).
DEFAULT_SLOTS = 1
# Requests waiting for a slot before new ones get 429 + Retry-After (llama.cpp's server and vLLM
# queue without bound; a bounded queue tells clients to back off instead of timing out).
DEFAULT_MAX_QUEUE = 64
# A request holds queue room from its capacity check until its generations are queued (normally
# milliseconds: the key's limits, then the start of the response). A hold this old belongs to a
# request whose client left in between, and stops counting even if it was not freed yet.
HOLD_TTL_S = 5.0

# Prefixes of past requests kept in host memory (engine/scheduler.py: the prompt cache).
DEFAULT_PROMPT_CACHE = 8
MIN_HELPER_CTX = 64
# Closing pressure: a small model under a JSON grammar can repeat itself inside a string until
# max_tokens cuts it off, leaving JSON that does not parse. In the last CLOSING_RESERVE tokens of a
# grammar-constrained generation we add CLOSING_BIAS to the tokens that close things: inside a
# string, those that end it (`"`, `"}`, `"]}`...); outside, those made of `}` and `]` only. The
# grammar still decides what is valid. Such an answer reports finish_reason "length" (it was cut
# short), but it parses.
CLOSING_RESERVE = 24
CLOSING_BIAS = 30.0
CLOSING_BRACKETS = frozenset("]}")
PIECE_BUFFER = 256             # bytes; the longest token piece in common vocabularies is far shorter


@dataclass
class Job:
    """One generation request, as the scheduler sees it."""

    prompt: list[int]
    params: SamplingParams
    emit: Callable[[Step | BaseException], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    images: list[ImageSpan] = field(default_factory=list)    # where the prompt is images (vision.py)


@dataclass
class Run:
    """One generation in progress: its sampler and text stream (made by `LlamaEngine.begin_run`)."""

    job: Job
    sampler: "_Sampler"
    stream: TextStream
    pressure_from: int | None
    json_state: "_JsonStringState" = field(default_factory=lambda: _JsonStringState())
    generated: int = 0
    pending: int = -1             # the last sampled token, decoded in the next step


class LlamaEngine(Engine):
    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 chat_template: str | None = None, slots: int = DEFAULT_SLOTS,
                 max_queue: int = DEFAULT_MAX_QUEUE, prompt_cache: int = DEFAULT_PROMPT_CACHE,
                 load_invariant: bool = True, mmproj: Path | None = None, flash_attn: bool = True):
        threads = n_threads or max(1, os.cpu_count() or 1)
        # The Llama object gives us the model, its tokenizer and metadata; it gets a token context.
        # Generation runs in our own context, with one KV sequence (and buffer) per slot.
        self._llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=MIN_HELPER_CTX, n_batch=MIN_HELPER_CTX,
                                    n_threads=threads, n_threads_batch=threads, verbose=False)
        self.model_path = Path(model_path)
        trained = llama_cpp.llama_model_n_ctx_train(self._llm.model)
        self.n_ctx = min(n_ctx, trained) if n_ctx else trained
        self.n_vocab = self._llm.n_vocab()
        self.slots = slots
        self.max_queue = max_queue
        params = llama_cpp.llama_context_default_params()
        # One KV buffer of n_ctx cells per slot (non-unified): see engine/scheduler.py for why.
        params.n_ctx, params.n_batch, params.n_ubatch = self.n_ctx * slots, N_BATCH, N_BATCH
        params.n_seq_max, params.kv_unified = slots, False
        params.n_threads, params.n_threads_batch = threads, threads
        # Flash attention, as llama-server uses it: it decodes 8 sequences 7-15% faster here
        # (docs/concurrency.md). Its CPU kernels depend on the batch; the scheduler keeps greedy
        # output load-invariant anyway (scheduler.py, FA_MAX_CHUNK and FA_SPLIT_FROM).
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self._ctx = llama_cpp.llama_init_from_model(self._llm.model, params)
        if not self._ctx and flash_attn:        # a backend without it: go on without
            log.warning("flash attention is not available here; running without it")
            flash_attn, params.flash_attn_type = False, llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            self._ctx = llama_cpp.llama_init_from_model(self._llm.model, params)
        self.flash_attn = flash_attn
        if not self._ctx:
            raise EngineError(f"llama.cpp could not create a context of {self.n_ctx} tokens")
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        try:
            self.vision = VisionProjector(mmproj, self._llm.model, threads) if mmproj else None
        except EngineError:
            llama_cpp.llama_free(self._ctx)
            raise
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        meta = self._llm.metadata
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        bos, eos = self._llm.token_bos(), self._llm.token_eos()
        self.template = ChatTemplate(
            chat_template or meta.get("tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=self._piece(bos, special=True).decode("utf-8", "replace") if bos >= 0 else "",
            eos_token=self._piece(eos, special=True).decode("utf-8", "replace") if eos >= 0 else "")
        self._pieces: dict[int, bytes] = {}
        self._closing: tuple[list[int], list[int]] | None = None
        self._scheduler = Scheduler(self, slots, N_BATCH, prompt_cache, invariant=load_invariant,
                                    flash_attn=flash_attn)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._outbox: list[tuple] = []       # (loop, queue, job, item) emitted, not yet delivered
        self._holds: weakref.WeakSet[Hold] = weakref.WeakSet()   # admitted, not yet queued
        self._holds_lock = threading.Lock()
        self._thread = threading.Thread(target=self._worker, name="llama-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ text

    @property
    def add_bos(self) -> bool:
        return self._add_bos

    def tokenize(self, text: str, *, special: bool = False, add_bos: bool = False) -> list[int]:
        if not text:
            return [self._llm.token_bos()] if add_bos else []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="replace")

    def render_chat(self, messages: list[dict], *, add_generation_prompt: bool = True) -> list[Piece]:
        return self.template.render(messages, add_generation_prompt)

    def chat_tokens(self, messages: list[dict], images: dict[str, np.ndarray] | None = None) -> list[int]:
        """The prompt of a chat. `images`: marker text -> RGB pixels; where a marker stands in a
        message's content, the image goes in (a MediaPrompt; needs a projector, and encodes the
        images, so call it off the event loop)."""
        pieces = self.render_chat(messages)
        bos = self.template.bos_token
        # A template that writes the BOS text itself must not get a second BOS from the tokenizer.
        add_bos = self._add_bos and not (bos and pieces and pieces[0].text.startswith(bos))
        if not images:
            return self.encode_pieces(pieces, add_bos=add_bos)
        if self.vision is None:
            raise EngineError("this model takes no images")
        markers = re.compile("|".join(re.escape(m) for m in images))
        tokens: list[int] = []
        spans: list[ImageSpan] = []
        for piece in pieces:
            at = 0
            for m in ([] if piece.special else markers.finditer(piece.text)):
                tokens += self.tokenize(piece.text[at:m.start()], add_bos=add_bos and not tokens)
                rgb = images[m.group()]
                for k, part in enumerate(self.vision.image_prompt(rgb)):
                    if isinstance(part, np.ndarray):
                        spans.append(ImageSpan(len(tokens), part))
                        tokens += placeholders(rgb, k, len(part))
                    else:
                        tokens += part
                at = m.end()
            tokens += self.tokenize(piece.text[at:], special=piece.special, add_bos=add_bos and not tokens)
        return MediaPrompt(tokens, spans)

    def token_piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._piece(token, special=False)
        return piece

    def closing_tokens(self) -> tuple[list[int], list[int]]:
        """(tokens that end a JSON string and may close brackets, tokens that only close brackets)."""
        if self._closing is None:
            in_string, outside = [], []
            for t in range(self.n_vocab):
                text = self.token_piece(t).decode("utf-8", "ignore")
                if text.startswith('"') and set(text[1:]) <= CLOSING_BRACKETS:
                    in_string.append(t)
                elif text and set(text) <= CLOSING_BRACKETS:
                    outside.append(t)
            self._closing = (in_string, outside)
        return self._closing

    def _piece(self, token: int, *, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(PIECE_BUFFER)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, PIECE_BUFFER, 0, special)
        return buf.raw[:max(n, 0)]

    # ------------------------------------------------------------------ generation

    async def generate(self, prompt: list[int], params: SamplingParams,
                       hold: Hold | None = None) -> AsyncIterator[Step]:
        if not prompt:
            raise EngineError("empty prompt")
        loop = asyncio.get_running_loop()
        steps: asyncio.Queue[Step | BaseException] = asyncio.Queue()

        def emit(item: Step | BaseException) -> None:     # on the worker thread; see deliver()
            self._outbox.append((loop, steps, job, item))

        job = Job(list(prompt), params, emit, images=prompt.images if isinstance(prompt, MediaPrompt) else [])
        with self._holds_lock:                 # the room held for it is now taken by the job itself
            if hold is not None:
                hold.n = max(0, hold.n - 1)
                hold.cancels.append(job.cancelled.set)
            self._jobs.put(job)
        try:
            while True:
                item = await steps.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            job.cancelled.set()

    def check_capacity(self, generations: int = 1) -> Hold:
        with self._holds_lock:
            now = time.monotonic()
            # Room held by requests admitted but not yet queued; a hold older than HOLD_TTL_S
            # belongs to a request whose client left before its answer started: it no longer counts.
            held = sum(h.n for h in list(self._holds) if now - h.since < HOLD_TTL_S)
            # Generations queued or about to be, beyond the slots free to take them now. Queued jobs
            # whose client has left wait to be skipped, and count for nothing.
            with self._jobs.mutex:
                queued = sum(1 for j in self._jobs.queue if j is not None and not j.cancelled.is_set())
            waiting = max(0, queued + held - self._scheduler.free_slots())
            if waiting >= self.max_queue:
                raise RateLimitExceeded(
                    f"The server is busy: {waiting} requests are already waiting for this model "
                    f"(queue size {self.max_queue}). Retry after the time in the Retry-After header.",
                    retry_after=self._scheduler.retry_after(waiting), code="queue_full")
            hold = Hold(generations)
            self._holds.add(hold)
            return hold

    def _worker(self) -> None:
        self._scheduler.loop(self._jobs)

    def deliver(self) -> None:
        """Hand what generations emitted since the last call to their listeners: one wake-up per
        event loop for a whole step, not one per sequence (each wake-up is a write to the loop's
        self-pipe and a turn of the loop, on a CPU that llama.cpp's threads need). The scheduler
        calls it after every step and before it waits for work."""
        if not self._outbox:
            return
        out, self._outbox = self._outbox, []
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for loop, steps, job, item in out:
            by_loop.setdefault(loop, []).append((steps, job, item))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_put_all, items)
            except RuntimeError:          # the event loop is gone: nobody is listening
                for _, job, _ in items:
                    job.cancelled.set()

    # ------------------------------------------------------------------ what the scheduler drives
    # engine/scheduler.py decides which sequences go into each llama_decode; it works on this
    # context and, for each generation it runs, calls begin_run, advance_run (after every decode
    # that produced the generation's logits) and end_run. All of it runs on the worker thread.

    @property
    def context(self) -> llama_cpp.llama_context_p:
        """The llama.cpp context that generations decode in (one KV sequence per slot)."""
        return self._ctx

    @property
    def memory(self) -> llama_cpp.llama_memory_t:
        """The context's KV memory, for removing a sequence's cells."""
        return self._mem

    @property
    def load_invariant(self) -> bool:
        """Whether greedy output is independent of load and of prompt-cache hits (scheduler.py)."""
        return self._scheduler.invariant

    def begin_run(self, job: Job) -> "Run":
        """Start the generation of `job`: its sampler chain (and grammar) and its text stream."""
        p = job.params
        pressure_from = (p.max_tokens - CLOSING_RESERVE
                         if p.grammar and not p.grammar_trigger and p.max_tokens > 2 * CLOSING_RESERVE
                         else None)
        return Run(job=job, sampler=_Sampler(p, self.n_vocab, self._vocab), stream=TextStream(p.stop),
                   pressure_from=pressure_from)

    def end_run(self, run: "Run") -> None:
        """Free what `begin_run` made (the generation finished, failed or was cancelled)."""
        run.sampler.free()

    def advance_run(self, run: "Run", idx: int, reused: int, n_cached: int) -> bool:
        """Sample the next token of `run` from row `idx` of the last decode's logits and emit the
        text it completes. `reused`: prompt tokens taken from cached cells (reported in usage);
        `n_cached`: cells the sequence holds now. True when the generation has finished (its
        last step emitted); otherwise the token waits in `run.pending` for the next decode."""
        p, job = run.job.params, run.job
        logits = None
        if p.logprobs:
            ptr = llama_cpp.llama_get_logits_ith(self._ctx, idx)
            logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        if run.pressure_from is not None and run.generated >= run.pressure_from and (
                not run.sampler.pressed or run.json_state.changed):
            run.sampler.press(self.closing_tokens()[0 if run.json_state.in_string else 1])
            run.json_state.changed = False
        token = run.sampler.sample(self._ctx, idx)
        run.generated += 1
        finish = None
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            finish = "length" if run.sampler.pressed else "stop"
        else:
            piece = self.token_piece(token)
            if run.pressure_from is not None:
                run.json_state.feed(piece)
            info = _token_info(logits, token, p.top_logprobs, self.token_piece) if p.logprobs else None
            text, infos = run.stream.push(piece, info)
            if text or infos:   # running counts, so that a stream cut short can still be billed
                job.emit(Step(text=text, tokens=infos, prompt_tokens=len(job.prompt), cached_tokens=reused,
                              completion_tokens=run.generated))
            if run.stream.stopped:
                finish = "length" if run.sampler.pressed else "stop"
            elif run.generated >= p.max_tokens or n_cached + 1 >= self.n_ctx:
                finish = "length"
        if finish is None:
            run.pending = token
            return False
        text, infos = run.stream.finish()
        job.emit(Step(text=text, tokens=infos, finish_reason=finish, prompt_tokens=len(job.prompt),
                      cached_tokens=reused, completion_tokens=run.generated))
        return True

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join, 5)
        if not self._thread.is_alive() and self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
            if self.vision is not None:
                self.vision.close()


def _put_all(items: list) -> None:
    for steps, _, item in items:
        steps.put_nowait(item)


def _grammar_sampler(p: SamplingParams, vocab) -> llama_cpp.llama_sampler_p:
    grammar = p.grammar.encode()
    if p.grammar_trigger:
        patterns = (ctypes.c_char_p * 1)(p.grammar_trigger.encode())
        sampler = llama_cpp.llama_sampler_init_grammar_lazy_patterns(vocab, grammar, b"root", patterns, 1,
                                                                    None, 0)
    else:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar, b"root")
    if not sampler:
        raise EngineError("llama.cpp rejected the grammar")
    return sampler


class _JsonStringState:
    """Whether generated JSON text is inside a string literal right now."""

    def __init__(self) -> None:
        self.in_string = False
        self.changed = False          # in_string flipped since the flag was last cleared
        self._escape = False

    def feed(self, piece: bytes) -> None:
        before = self.in_string
        for ch in piece:
            if self._escape:
                self._escape = False
            elif self.in_string and ch == 0x5C:       # backslash
                self._escape = True
            elif ch == 0x22:                            # double quote
                self.in_string = not self.in_string
        self.changed |= before != self.in_string


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class _Sampler:
    """A llama.cpp sampler chain, plus a grammar checked the cheap way round.

    Applying a grammar to every one of ~50k candidates per token halves decode speed. Like
    llama.cpp's own common sampler, we first sample without the grammar and ask the grammar only
    about the chosen token; only when it is rejected do we filter all candidates through the
    grammar and sample again. The result is the same distribution restricted to valid tokens."""

    def __init__(self, p: SamplingParams, n_vocab: int, vocab):
        self.chain = _make_chain(p, n_vocab)
        self.n_vocab = n_vocab
        # Plain greedy decoding (with or without logit_bias) is an argmax: done over a view of the
        # logits row in numpy, it takes ~15 us a token where llama_sampler_sample, which first copies
        # the whole vocabulary into candidate records, takes ~145 us (SmolLM2's 49k tokens). Same
        # choice: the bias is added in float32 as llama.cpp does, and ties go to the lowest id in both.
        self.argmax = (p.temperature <= 0.0 and not p.grammar
                       and not (p.presence_penalty or p.frequency_penalty))
        self.bias_ids = np.array([t for t, _ in p.logit_bias], dtype=np.int64)
        self.bias = np.array([b for _, b in p.logit_bias], dtype=np.float32)
        self.grammar = None
        self.pressure = None          # a logit-bias sampler for closing tokens, once pressed
        if p.grammar:
            try:
                self.grammar = _grammar_sampler(p, vocab)
            except EngineError:
                llama_cpp.llama_sampler_free(self.chain)
                raise
            self.cur = np.zeros(n_vocab, dtype=_TOKEN_DATA)
            self.cur["id"] = np.arange(n_vocab, dtype=np.int32)
            self.arr = llama_cpp.llama_token_data_array(
                data=self.cur.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab, selected=-1,
                sorted=False)
            self.one = np.zeros(1, dtype=_TOKEN_DATA)
            self.one_arr = llama_cpp.llama_token_data_array(
                data=self.one.ctypes.data_as(llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False)

    @property
    def pressed(self) -> bool:
        return self.pressure is not None

    def press(self, tokens: list[int]) -> None:
        """From now on, favour `tokens` (replacing any earlier favourites)."""
        if self.grammar is None or not tokens:
            return
        if self.pressure is not None:
            llama_cpp.llama_sampler_free(self.pressure)
        arr = (llama_cpp.llama_logit_bias * len(tokens))()
        for i, tok in enumerate(tokens):
            arr[i].token, arr[i].bias = tok, CLOSING_BIAS
        self.pressure = llama_cpp.llama_sampler_init_logit_bias(self.n_vocab, len(tokens), arr)

    def sample(self, ctx, idx: int = -1) -> int:
        if self.argmax:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, idx), shape=(self.n_vocab,))
            if len(self.bias_ids):
                logits = logits.copy()
                np.add.at(logits, self.bias_ids, self.bias)
            return int(logits.argmax())
        if self.grammar is None:
            return llama_cpp.llama_sampler_sample(self.chain, ctx, idx)   # samples and accepts
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, idx), shape=(self.n_vocab,))
        token = self._draw(logits, with_grammar=False)
        self.one[0] = (token, 1.0, 0.0)
        self.one_arr.selected = -1
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self.one_arr))
        if not np.isfinite(self.one["logit"][0]):          # the grammar forbids it: resample
            token = self._draw(logits, with_grammar=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain, token)
        return token

    def _draw(self, logits: np.ndarray, with_grammar: bool) -> int:
        # The chain may have shrunk or sorted the array last time: restore all candidates.
        self.cur["id"] = np.arange(self.n_vocab, dtype=np.int32)
        self.cur["logit"] = logits
        self.cur["p"] = 0.0
        self.arr.data = self.cur.ctypes.data_as(llama_cpp.llama_token_data_p)
        self.arr.size, self.arr.selected, self.arr.sorted = self.n_vocab, -1, False
        if self.pressure is not None:
            llama_cpp.llama_sampler_apply(self.pressure, ctypes.byref(self.arr))
        if with_grammar:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self.arr))
        llama_cpp.llama_sampler_apply(self.chain, ctypes.byref(self.arr))
        if self.arr.selected < 0:
            raise EngineError("the sampler selected no token")
        return int(self.arr.data[self.arr.selected].id)

    def free(self) -> None:
        for sampler in (self.chain, self.grammar, self.pressure):
            if sampler is not None:
                llama_cpp.llama_sampler_free(sampler)


def _make_chain(p: SamplingParams, n_vocab: int) -> llama_cpp.llama_sampler_p:
    """llama.cpp sampler chain in OpenAI's order: bias, penalties, temperature, truncation, draw."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = lambda s: llama_cpp.llama_sampler_chain_add(chain, s)  # noqa: E731
    if p.logit_bias:
        arr = (llama_cpp.llama_logit_bias * len(p.logit_bias))()
        for i, (tok, bias) in enumerate(p.logit_bias):
            arr[i].token, arr[i].bias = tok, bias
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(p.logit_bias), arr))
    if p.presence_penalty or p.frequency_penalty:
        # OpenAI's penalties count only generated tokens; the sampler sees only those (accepted ones).
        add(llama_cpp.llama_sampler_init_penalties(n_vocab, p.max_tokens, 1.0,
                                                   p.frequency_penalty, p.presence_penalty))
    if p.temperature <= 0.0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    add(llama_cpp.llama_sampler_init_temp(p.temperature))
    if p.top_k > 0:
        add(llama_cpp.llama_sampler_init_top_k(p.top_k))
    if p.top_p < 1.0:
        add(llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
    if p.min_p > 0.0:
        add(llama_cpp.llama_sampler_init_min_p(p.min_p, 1))
    seed = p.seed if p.seed is not None else int.from_bytes(os.urandom(4), "little")
    add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def _token_info(logits: np.ndarray, token: int, top_n: int,
                piece: Callable[[int], bytes]) -> TokenInfo:
    """Log-probabilities under the model's own distribution (before sampling transforms)."""
    m = float(logits.max())
    lse = m + float(np.log(np.exp(logits - m, dtype=np.float64).sum()))

    def entry(tok: int) -> tuple[str, tuple[int, ...], float]:
        b = piece(tok)
        return b.decode("utf-8", errors="replace"), tuple(b), float(logits[tok]) - lse

    top: tuple = ()
    if top_n > 0:
        idx = np.argpartition(-logits, top_n)[:top_n]
        idx = idx[np.argsort(-logits[idx], kind="stable")]
        top = tuple(entry(int(i)) for i in idx)
    text, raw, lp = entry(token)
    return TokenInfo(token=text, bytes=raw, logprob=lp, top=top)
