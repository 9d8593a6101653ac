"""Continuous batching over one llama.cpp context: N sequence slots decoded together.

Every step decodes the next token of every generating sequence plus chunks of prompts still being
prefilled, so new requests join while others are mid-answer. Each sequence samples with its own
sampler (its own temperature, seed, penalties, logit bias, grammar) from its own row of logits, and
streams its own text.

Load invariance: greedy output of a request is the same whether it runs alone or beside others,
and with or without a prefix-cache hit. Three things make it so.
- Each slot has a KV buffer of its own (llama.cpp's non-unified KV cache, one stream per sequence):
  a sequence's cells sit at the same places whatever else runs, and cells of other sequences never
  enter its attention sums (in a unified cache they interleave: 3 of 8 answers stayed the same).
- Every token is computed by the same kernels whatever else is in the batch. On CPU, ggml's
  attention matmuls over the F16 KV cache (K*Q and V*softmax) take llamafile's tinyBLAS when the
  sequence has two or more tokens in the micro-batch and `ggml_vec_dot_f16` when it has one
  (llamafile_sgemm returns false for n < 2: vendor/llama.cpp/ggml/src/ggml-cpu/llamafile/sgemm.cpp,
  "only enable sgemm for prompt processing"); the two sum in different orders, so the results
  differ in the last bits. Which one a prompt token got used to depend on load: llama.cpp splits a
  batch over several streams into micro-batches of consecutive sequences with equal token counts
  (`split_equal`, src/llama-batch.cpp), so a prompt decoded beside a generating sequence had its
  first token computed alone. Now the generating sequences (one token each, always
  `vec_dot`) go into one `llama_decode`, and every prompt chunk into one of its own, at least
  MIN_CHUNK tokens long (always tinyBLAS; its per-element sums do not depend on the chunk's size).
  The weight matmuls of the embedded model (Q4_1, and Q8_0 for the output) give every row the same
  result at any batch size on this CPU (bench/ggml_row_invariance.sh, bench/batch_invariance.py,
  docs/concurrency.md). Models with K-quant weights (Q4_K, Q6_K) are not covered: their repacked
  and tiled kernels change a row's result with the number of rows.
- A cache hit leaves at least MIN_CHUNK prompt tokens to compute, and cells of generated tokens
  (computed one at a time) are dropped when the generation ends, so cached cells are always ones
  a prompt chunk computed: the same values a cold request computes.
Images (engine/vision.py): a prompt's image positions hold placeholder ids and are decoded from
their embeddings, in a `llama_decode` of their own (a llama.cpp batch holds token ids or embeddings,
never both). A prompt chunk therefore never crosses from text into an image or out of one.

`load_invariant=False` gives the older scheduling (one `llama_decode` per step, generated cells
kept for the next turn of a conversation) for comparison.

Prefix reuse: a slot keeps the KV cells of its last request (of its prompt, in load-invariant
mode), and a new request goes to the free slot whose cells share the longest prefix with its prompt.
The prompt cache keeps more prefixes in host memory, as llama.cpp's server does with its
`--cache-ram`: when admission is about to overwrite a slot's cells, they are first saved
(`llama_state_seq_get_data`, a copy of the sequence's K and V), and a request whose prompt begins
with a saved prefix, or with what another slot holds, gets those cells restored into its slot
(`llama_state_seq_set_data`) instead of computing them again. The cache is bounded in entries and
bytes and drops the least recently used entry first.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np

from omnimini.engine.base import EngineError
from omnimini.engine.cpu import GATE

if TYPE_CHECKING:
    from omnimini.engine.llama import Job, LlamaEngine, Run
    from omnimini.engine.vision import ImageSpan

log = logging.getLogger(__name__)

# A prefix shorter than this is cheaper to recompute than to save and restore (a few ms of prefill).
PROMPT_CACHE_MIN_TOKENS = 32
# Host memory the prompt cache may hold in all (K and V of SmolLM2-135M: about 23 KB per token).
PROMPT_CACHE_MAX_BYTES = 1 << 30
# Load invariance: a prompt chunk of one token takes other kernels than a longer one (module
# docstring), so in load-invariant mode no prompt chunk is shorter than this (unless the whole
# prompt is).
MIN_CHUNK = 2
# Flash attention (engine/llama.py) has three CPU kernels that sum differently
# (ggml-cpu/ops.cpp, ggml_compute_forward_flash_attn_ext_f16): a tiled one for 64+ query tokens of
# one sequence in a micro-batch (GGML_FA_TILE_Q), a split-KV one for a micro-batch of a single
# token of a single sequence over 512+ KV cells, and a row-by-row one (each query row on its own,
# over the unmasked cells in cell order) for everything else. Load-invariant mode keeps every token
# on the row-by-row kernel: no prompt chunk is longer than FA_MAX_CHUNK, and a decoding sequence
# with more than FA_SPLIT_FROM cells (the cache pads KV views to 256 cells, so 512+) that would be
# alone in its micro-batch gets a twin: a throwaway token at the next position of the same
# sequence, in the same call, removed after it (two query rows: the row-by-row kernel, and the
# causal mask hides the twin from the real token). Which sequences are alone: with one KV stream
# per sequence, llama.cpp puts only consecutive, increasing sequence ids in one micro-batch
# (`split_equal(..., sequential=true)`, src/llama-batch.cpp), so decoding sequences 3 and 5 are two
# micro-batches of one token each. (A companion token in another sequence only helps when that
# sequence is the next id, placed after it; 1-slot engines have none.)
FA_MAX_CHUNK = 63
FA_SPLIT_FROM = 256
# Smoothing of the average time a request holds a slot, which estimates Retry-After for a full queue.
SERVICE_TIME_EMA = 0.2


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class CacheEntry:
    tokens: list[int]
    state: "ctypes.Array[ctypes.c_ubyte]"   # llama_state_seq_get_data of a sequence holding `tokens`
    last_used: float


@dataclass
class Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)   # tokens whose KV cells this sequence holds
    last_used: float = 0.0
    job: "Job | None" = None
    prefill_at: int = 0            # next prompt index to decode
    reused: int = 0                # prompt tokens taken from the cache
    run: "Run | None" = None      # the generation in progress
    logits_index: int = -1         # row of this slot's logits in the last batch, or -1


class Scheduler:
    def __init__(self, engine: "LlamaEngine", n_slots: int, n_batch: int, cache_entries: int = 0,
                 invariant: bool = True, flash_attn: bool = False):
        self.engine = engine
        self.invariant = invariant      # greedy output independent of load and of cache hits
        # the longest prompt chunk of one sequence (see FA_MAX_CHUNK)
        self.max_chunk = FA_MAX_CHUNK if invariant and flash_attn else n_batch
        self.twins = invariant and flash_attn
        self.slots = [Slot(seq_id=i) for i in range(n_slots)]
        self.cache: list[CacheEntry] = []
        self.cache_entries = cache_entries
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.embd_batch = None          # for image embeddings, made when the first image comes
        self.service_time = 1.0         # seconds a request holds a slot, smoothed

    def free_slots(self) -> int:
        """Slots with no job (read from other threads: a moment's snapshot is all admission needs)."""
        return sum(1 for s in self.slots if s.job is None)

    def retry_after(self, waiting: int) -> float:
        """Seconds until a request queued behind `waiting` others would likely start."""
        return self.service_time * (waiting + 1) / len(self.slots)

    # ------------------------------------------------------------------ admission

    def _admit(self, job: "Job") -> None:
        free = [s for s in self.slots if s.job is None]
        slot = max(free, key=lambda s: (common_prefix(s.cached, job.prompt), -s.last_used))
        mem = self.engine.memory
        reuse = common_prefix(slot.cached, job.prompt)
        donor, shared = self._donor(job.prompt, slot)
        if donor is None or shared < reuse + PROMPT_CACHE_MIN_TOKENS:
            donor = None
        elif isinstance(donor, CacheEntry):
            # The entry moves into the slot: the slot's cells will be saved again, as the newer
            # conversation on this prefix, when admission next overwrites them.
            self.cache.remove(donor)
        self._keep(slot, job.prompt)
        if donor is not None:
            state = donor.state if isinstance(donor, CacheEntry) else self._snapshot(donor)
            llama_cpp.llama_memory_seq_rm(mem, slot.seq_id, -1, -1)
            if llama_cpp.llama_state_seq_set_data(self.engine.context, state, len(state), slot.seq_id):
                reuse = shared
            else:                                  # could not restore: compute the prompt instead
                log.warning("restoring a cached prefix of %d tokens failed", shared)
                reuse = 0
        # The last prompt tokens must be computed (they give the logits); in load-invariant mode at
        # least MIN_CHUNK of them, so that they are computed as they would be without the cache.
        reuse = max(0, min(reuse, len(job.prompt) - (MIN_CHUNK if self.invariant else 1)))
        llama_cpp.llama_memory_seq_rm(mem, slot.seq_id, reuse, -1)   # drop what follows the prefix
        slot.cached = job.prompt[:reuse]
        slot.job, slot.prefill_at, slot.reused = job, reuse, reuse
        slot.run = self.engine.begin_run(job)
        slot.last_used = time.monotonic()

    def _donor(self, prompt: list[int], slot: Slot) -> tuple["Slot | CacheEntry | None", int]:
        """The other slot or cache entry whose cells share the longest prefix with `prompt`."""
        best: Slot | CacheEntry | None = None
        shared = 0
        for other in self.slots:
            if other is not slot and (n := common_prefix(self._reusable(other), prompt)) > shared:
                best, shared = other, n
        for entry in self.cache:
            if (n := common_prefix(entry.tokens, prompt)) > shared:
                best, shared = entry, n
        return best, shared

    def _reusable(self, slot: Slot) -> list[int]:
        """The tokens of `slot` whose cells another request may take: in load-invariant mode, not
        those of an answer still being generated (see `_release`)."""
        if self.invariant and slot.job is not None:
            return slot.cached[:len(slot.job.prompt)]
        return slot.cached

    def _snapshot(self, slot: Slot) -> "ctypes.Array[ctypes.c_ubyte]":
        ctx = self.engine.context
        size = llama_cpp.llama_state_seq_get_size(ctx, slot.seq_id)
        buf = (ctypes.c_ubyte * size)()
        llama_cpp.llama_state_seq_get_data(ctx, buf, size, slot.seq_id)
        return buf

    def _keep(self, slot: Slot, prompt: list[int]) -> None:
        """Before admission overwrites `slot`'s cells beyond its common prefix with `prompt`, save
        them in the prompt cache, unless an entry already holds them all."""
        tokens = slot.cached
        if not self.cache_entries or len(tokens) < PROMPT_CACHE_MIN_TOKENS:
            return
        if common_prefix(tokens, prompt) == len(tokens):
            return                                    # nothing will be lost
        if any(common_prefix(e.tokens, tokens) == len(tokens) for e in self.cache):
            return
        # An entry that is a prefix of this one is superseded by it.
        self.cache = [e for e in self.cache if common_prefix(e.tokens, tokens) < len(e.tokens)]
        self.cache.append(CacheEntry(list(tokens), self._snapshot(slot), slot.last_used))
        self.cache.sort(key=lambda e: e.last_used)
        while len(self.cache) > self.cache_entries or (
                len(self.cache) > 1 and sum(len(e.state) for e in self.cache) > PROMPT_CACHE_MAX_BYTES):
            self.cache.pop(0)                         # least recently used first

    def _release(self, slot: Slot) -> None:
        if slot.run is not None:
            self.engine.end_run(slot.run)
        if self.invariant and slot.job is not None and len(slot.cached) > len(slot.job.prompt):
            # Cells of generated tokens were computed one token at a time, which rounds otherwise
            # than a prompt chunk: drop them, so that a later prompt that repeats this answer
            # computes it as a prompt, exactly as it would without this slot's cells.
            llama_cpp.llama_memory_seq_rm(self.engine.memory, slot.seq_id, len(slot.job.prompt), -1)
            del slot.cached[len(slot.job.prompt):]
        now = time.monotonic()
        if slot.job is not None:
            self.service_time += SERVICE_TIME_EMA * (now - slot.last_used - self.service_time)
        slot.job, slot.run, slot.logits_index = None, None, -1
        slot.last_used = now

    # ------------------------------------------------------------------ the loop

    def loop(self, jobs: "queue.Queue[Job | None]") -> None:
        while True:
            active = [s for s in self.slots if s.job is not None]
            free = len(self.slots) - len(active)
            while free:
                if not active:
                    self.engine.deliver()       # nothing runs: hand out what is left before waiting
                try:
                    job = jobs.get(block=not active)
                except queue.Empty:
                    break
                if job is None:
                    return
                if job.cancelled.is_set():
                    continue
                try:
                    self._admit(job)
                except Exception as e:     # noqa: BLE001 - reported to the request
                    log.exception("admission failed")
                    job.emit(e)
                    continue
                active = [s for s in self.slots if s.job is not None]
                free -= 1
            for s in active:
                if s.job.cancelled.is_set():
                    self._release(s)
            active = [s for s in self.slots if s.job is not None]
            if active:
                GATE.yield_to_urgent()      # speech someone is waiting on goes first (engine/cpu.py)
                try:
                    self._step(active)
                except Exception as e:     # noqa: BLE001 - a bug must fail requests, not hang them all
                    log.exception("a scheduling step failed")
                    for s in active:
                        if s.job is not None:
                            self._fail(s, EngineError(f"the generation failed: {e.__class__.__name__}"))

    def _step(self, active: list[Slot]) -> None:
        """One step: the next token of every generating sequence, then prompt chunks as room allows.

        Load-invariant mode (the default) decodes the generating sequences in one `llama_decode`
        and the prompt chunks in another (equal chunks, see _equal_chunks), or one call each, every
        chunk at least MIN_CHUNK tokens long (module docstring: why). Otherwise all of it goes into
        one `llama_decode`."""
        decoding = [s for s in active if s.prefill_at >= len(s.job.prompt)]
        prefilling = [s for s in active if s.prefill_at < len(s.job.prompt)]
        batches: list[list[tuple[Slot, list[int]]]] = []
        twins: set[int] = set()
        if decoding:
            batches.append([(s, [s.run.pending]) for s in decoding])
            if self.twins:
                twins = self._twins(decoding)
        room = self.n_batch - len(decoding)
        images: list[list[tuple[Slot, list[int]]]] = []
        for s in [s for s in prefilling if self._segment(s)[1] is not None]:
            prefilling.remove(s)        # at an image: its embeddings go in a call of their own
            size = self._chunk_size(s, room)
            if size:
                images.append([(s, s.job.prompt[s.prefill_at:s.prefill_at + size])])
                room -= size
        if self.invariant and len(prefilling) > 1:
            group, size = self._equal_chunks(prefilling, room)
            if group:
                batches.append([(s, s.job.prompt[s.prefill_at:s.prefill_at + size]) for s in group])
                room -= size * len(group)
                prefilling = [s for s in prefilling if s not in group]
        for s in prefilling:
            size = self._chunk_size(s, room)
            if size:
                chunk = (s, s.job.prompt[s.prefill_at:s.prefill_at + size])
                if self.invariant or not batches:
                    batches.append([chunk])
                else:
                    batches[0].append(chunk)
                room -= size
        for batch in batches + images:
            if not self._decode(active, batch, twins if decoding and batch is batches[0] else set()):
                return

    def _twins(self, decoding: list[Slot]) -> set[int]:
        """seq_ids of the decoding sequences that get a twin token (FA_SPLIT_FROM says why): those
        over FA_SPLIT_FROM cells whose neighbouring ids do not decode (alone in their micro-batch),
        unless the twin would not fit in the sequence's n_ctx cells (the very last token of a full
        context then takes the split-KV kernel)."""
        ids = {s.seq_id for s in decoding}
        return {s.seq_id for s in decoding
                if FA_SPLIT_FROM < len(s.cached) + 1 < self.engine.n_ctx
                and s.seq_id - 1 not in ids and s.seq_id + 1 not in ids}

    def _equal_chunks(self, prefilling: list[Slot], room: int) -> tuple[list[Slot], int]:
        """Prompts to prefill together in one `llama_decode`, and the chunk size each gets.

        Equal chunks of at least MIN_CHUNK tokens: llama.cpp's `split_equal` keeps sequences with
        the same token count in one micro-batch, so every sequence still has >= 2 tokens there (the
        tinyBLAS path, module docstring), and one call computes all of them instead of one call per
        prompt, which left the generating sequences waiting behind a series of calls."""
        remaining = {id(s): self._segment(s)[0] - s.prefill_at for s in prefilling}
        size = min(room // len(prefilling), min(remaining.values()), self.max_chunk)
        group = [s for s in prefilling if remaining[id(s)] - size != 1]   # never leave a 1-token tail
        if size < MIN_CHUNK or len(group) < 2:
            return [], 0
        return group, size

    def _chunk_size(self, s: Slot, room: int) -> int:
        """How many of `s`'s remaining prompt tokens (up to the end of the text or image it is in)
        to prefill now, with `room` tokens left."""
        remaining = self._segment(s)[0] - s.prefill_at
        size = min(room, remaining, self.max_chunk)
        if not self.invariant or remaining < MIN_CHUNK:
            return max(size, 0)
        if remaining - size == 1:              # never leave a 1-token chunk for later
            size -= 1
        return size if size >= MIN_CHUNK else 0

    def _segment(self, s: Slot) -> tuple[int, "ImageSpan | None"]:
        """Where the text or image that `s`'s prefill has reached ends, and the image (None: text)."""
        at, end = s.prefill_at, len(s.job.prompt)
        for span in s.job.images:
            if span.start <= at < span.end:
                return span.end, span
            if at < span.start < end:
                end = span.start
        return end, None

    def _decode(self, active: list[Slot], batch: list[tuple[Slot, list[int]]],
                twins: set[int] = frozenset()) -> bool:
        """Decode `batch` (slots with their tokens) in one `llama_decode`, then sample every slot
        whose logits it produced. False when the decode failed (the step ends). A batch at an
        image (a single chunk, see _step) is decoded from the image's embeddings. `twins`: seq_ids
        of (decoding) slots whose token gets a throwaway twin after it (FA_SPLIT_FROM says why)."""
        n = 0
        image = self._segment(batch[0][0])[1] if batch[0][0].prefill_at < len(batch[0][0].job.prompt) else None
        b = self.batch if image is None else self._embeddings(batch[0][0], image, len(batch[0][1]))
        for s, tokens in batch:
            ends_prompt = s.prefill_at < len(s.job.prompt) and s.prefill_at + len(tokens) == len(s.job.prompt)
            generating = s.prefill_at >= len(s.job.prompt)
            for i, token in enumerate(tokens):
                last = i == len(tokens) - 1
                self._put(b, n + i, None if image else token, len(s.cached) + i, s.seq_id,
                          last and (generating or ends_prompt))
            s.logits_index = n + len(tokens) - 1 if (generating or ends_prompt) else -1
            n += len(tokens)
            if s.seq_id in twins:       # same token again, one position on, no logits
                self._put(b, n, tokens[-1], len(s.cached) + len(tokens), s.seq_id, False)
                n += 1
        b.n_tokens = n
        rc = llama_cpp.llama_decode(self.engine.context, b)
        for s, tokens in batch:
            if s.seq_id in twins:
                llama_cpp.llama_memory_seq_rm(self.engine.memory, s.seq_id, len(s.cached) + len(tokens), -1)
        if rc != 0:
            for s, _ in batch:
                s.logits_index = -1
            self._decode_failed(active, rc)
            return False
        for s, tokens in batch:
            s.cached.extend(tokens)
            if s.prefill_at < len(s.job.prompt):
                s.prefill_at += len(tokens)
        for s, _ in batch:
            if s.logits_index >= 0:
                try:
                    done = self.engine.advance_run(s.run, s.logits_index, s.reused, len(s.cached))
                except Exception as e:    # noqa: BLE001 - one bad sequence must not stop the others
                    log.exception("sampling failed")
                    s.job.emit(e)
                    done = True
                s.logits_index = -1
                if done:
                    self._release(s)
        self.engine.deliver()       # this call's tokens go out now, not after the step's next call
        return True

    def _embeddings(self, s: Slot, image: "ImageSpan", n: int) -> llama_cpp.llama_batch:
        """The embedding batch, holding the rows of `image` for `s`'s next `n` prompt positions."""
        rows = np.ascontiguousarray(image.embd[s.prefill_at - image.start:s.prefill_at - image.start + n],
                                    dtype=np.float32)
        if self.embd_batch is None:        # rows are the model's width, the same for every image
            self.embd_batch = llama_cpp.llama_batch_init(self.n_batch, rows.shape[1], 1)
        ctypes.memmove(self.embd_batch.embd, rows.ctypes.data, rows.nbytes)
        return self.embd_batch

    def _put(self, b: llama_cpp.llama_batch, i: int, token: int | None, pos: int, seq_id: int,
             logits: bool) -> None:
        if token is not None:
            b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = logits

    def _fail(self, slot: Slot, error: EngineError) -> None:
        """End `slot`'s generation with `error`, and drop all its cells: they may be half-written."""
        slot.job.emit(error)
        self.engine.deliver()
        llama_cpp.llama_memory_seq_rm(self.engine.memory, slot.seq_id, -1, -1)
        slot.cached = []
        self._release(slot)

    def _decode_failed(self, active: list[Slot], rc: int) -> None:
        """Out of KV cells (rc 1; each slot has a buffer of n_ctx cells, and the service keeps every
        request within n_ctx, so this is a safety net) or an error: fail the sequence that holds the
        most cells so that the others can go on."""
        log.warning("llama_decode returned %d with %d active sequences", rc, len(active))
        self._fail(max(active, key=lambda s: len(s.cached)), _error(rc))
        for s in active:                   # prompt chunks of this batch were not decoded: redo them
            s.prefill_at = min(s.prefill_at, len(s.cached))


def _error(rc: int) -> EngineError:
    return EngineError("the server ran out of KV cache for this request; retry" if rc == 1
                       else f"llama_decode failed with code {rc}")

