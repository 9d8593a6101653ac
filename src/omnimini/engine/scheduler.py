"""Continuous batching over one llama.cpp context: N sequence slots decoded together.

Every step builds one `llama_decode` batch from the next token of every generating sequence plus
chunks of prompts still being prefilled, so new requests join while others are mid-answer. Each
sequence samples with its own sampler (its own temperature, seed, penalties, logit bias, grammar)
from its own row of logits, and streams its own text.

Each slot has a KV buffer of its own (llama.cpp's non-unified KV cache, one stream per sequence), so
a sequence's cells sit at the same places whether it runs alone or beside others, and attention
sums in the same order: greedy output does not depend on load. (In a unified cache, cells of
concurrent sequences interleave and the sums round differently; output drifted after a few tokens.)

Prefix reuse: a slot keeps the KV cells of its last request, and a new request goes to the free slot
whose cells share the longest prefix with its prompt. The prompt cache keeps more prefixes in host
memory, as llama.cpp's server does with its `--cache-ram`: when admission is about to overwrite a
slot's cells, they are first saved (`llama_state_seq_get_data`, a copy of the sequence's K and V),
and a request whose prompt begins with a saved prefix, or with what another slot holds, gets those
cells restored into its slot (`llama_state_seq_set_data`) instead of computing them again. The
cache is bounded in entries and bytes and drops the least recently used entry first.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp

from omnimini.engine.base import EngineError

if TYPE_CHECKING:
    from omnimini.engine.llama import LlamaEngine, _Job, _Run

log = logging.getLogger(__name__)

# A prefix shorter than this is cheaper to recompute than to save and restore (a few ms of prefill).
PROMPT_CACHE_MIN_TOKENS = 32
# Host memory the prompt cache may hold in all (K and V of SmolLM2-135M: about 23 KB per token).
PROMPT_CACHE_MAX_BYTES = 1 << 30
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
    job: "_Job | None" = None
    prefill_at: int = 0            # next prompt index to decode
    reused: int = 0                # prompt tokens taken from the cache
    run: "_Run | None" = None      # the generation in progress
    logits_index: int = -1         # row of this slot's logits in the last batch, or -1


class Scheduler:
    def __init__(self, engine: "LlamaEngine", n_slots: int, n_batch: int, cache_entries: int = 0):
        self.engine = engine
        self.slots = [Slot(seq_id=i) for i in range(n_slots)]
        self.cache: list[CacheEntry] = []
        self.cache_entries = cache_entries
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.service_time = 1.0         # seconds a request holds a slot, smoothed

    def retry_after(self, waiting: int) -> float:
        """Seconds until a request queued behind `waiting` others would likely start."""
        return self.service_time * (waiting + 1) / len(self.slots)

    # ------------------------------------------------------------------ admission

    def _admit(self, job: "_Job") -> None:
        free = [s for s in self.slots if s.job is None]
        slot = max(free, key=lambda s: (common_prefix(s.cached, job.prompt), -s.last_used))
        mem = self.engine._mem
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
            if llama_cpp.llama_state_seq_set_data(self.engine._ctx, state, len(state), slot.seq_id):
                reuse = shared
            else:                                  # could not restore: compute the prompt instead
                log.warning("restoring a cached prefix of %d tokens failed", shared)
                reuse = 0
        reuse = min(reuse, len(job.prompt) - 1)       # the last prompt token must give logits
        llama_cpp.llama_memory_seq_rm(mem, slot.seq_id, reuse, -1)   # drop what follows the prefix
        slot.cached = job.prompt[:reuse]
        slot.job, slot.prefill_at, slot.reused = job, reuse, reuse
        slot.run = self.engine._start_run(job)
        slot.last_used = time.monotonic()

    def _donor(self, prompt: list[int], slot: Slot) -> tuple["Slot | CacheEntry | None", int]:
        """The other slot or cache entry whose cells share the longest prefix with `prompt`."""
        best: Slot | CacheEntry | None = None
        shared = 0
        for other in self.slots:
            if other is not slot and (n := common_prefix(other.cached, prompt)) > shared:
                best, shared = other, n
        for entry in self.cache:
            if (n := common_prefix(entry.tokens, prompt)) > shared:
                best, shared = entry, n
        return best, shared

    def _snapshot(self, slot: Slot) -> "ctypes.Array[ctypes.c_ubyte]":
        ctx = self.engine._ctx
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
            self.engine._end_run(slot.run)
        now = time.monotonic()
        if slot.job is not None:
            self.service_time += SERVICE_TIME_EMA * (now - slot.last_used - self.service_time)
        slot.job, slot.run, slot.logits_index = None, None, -1
        slot.last_used = now

    # ------------------------------------------------------------------ the loop

    def loop(self, jobs: "queue.Queue[_Job | None]") -> None:
        while True:
            active = [s for s in self.slots if s.job is not None]
            free = len(self.slots) - len(active)
            while free:
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
                self._step(active)

    def _step(self, active: list[Slot]) -> None:
        b, n = self.batch, 0
        added: list[tuple[Slot, list[int]]] = []
        for s in active:                                  # decoding sequences first: one token each
            if s.prefill_at >= len(s.job.prompt):
                token = s.run.pending
                self._put(n, token, len(s.cached), s.seq_id, True)
                s.logits_index, n = n, n + 1
                added.append((s, [token]))
        for s in active:                                  # then prompt chunks, as room allows
            if s.prefill_at < len(s.job.prompt) and n < self.n_batch:
                chunk = s.job.prompt[s.prefill_at:s.prefill_at + self.n_batch - n]
                last = s.prefill_at + len(chunk) == len(s.job.prompt)
                for i, token in enumerate(chunk):
                    self._put(n + i, token, len(s.cached) + i, s.seq_id, last and i == len(chunk) - 1)
                s.logits_index = n + len(chunk) - 1 if last else -1
                n += len(chunk)
                s.prefill_at += len(chunk)
                added.append((s, chunk))
        b.n_tokens = n
        rc = llama_cpp.llama_decode(self.engine._ctx, b)
        if rc != 0:
            self._decode_failed(active, rc)
            return
        for s, tokens in added:
            s.cached.extend(tokens)
        for s in active:
            if s.logits_index >= 0:
                try:
                    done = self.engine._advance(s.run, s.logits_index, s.reused, len(s.cached))
                except Exception as e:    # noqa: BLE001 - one bad sequence must not stop the others
                    log.exception("sampling failed")
                    s.job.emit(e)
                    done = True
                s.logits_index = -1
                if done:
                    self._release(s)

    def _put(self, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
        b = self.batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = logits

    def _decode_failed(self, active: list[Slot], rc: int) -> None:
        """Out of KV cells (rc 1; each slot has a buffer of n_ctx cells, and the service keeps every
        request within n_ctx, so this is a safety net) or an error: fail the sequence that holds the
        most cells so that the others can go on."""
        log.warning("llama_decode returned %d with %d active sequences", rc, len(active))
        mem = self.engine._mem
        victim = max(active, key=lambda s: len(s.cached))
        victim.job.emit(_error(rc))
        llama_cpp.llama_memory_seq_rm(mem, victim.seq_id, -1, -1)
        victim.cached = []
        self._release(victim)
        for s in active:                   # prompt chunks of this batch were not decoded: redo them
            s.prefill_at = min(s.prefill_at, len(s.cached))


def _error(rc: int) -> EngineError:
    return EngineError("the server ran out of KV cache for this request; retry" if rc == 1
                       else f"llama_decode failed with code {rc}")

