"""Continuous batching over one llama.cpp context: N sequence slots decoded together.

Every step builds one `llama_decode` batch from the next token of every generating sequence plus
chunks of prompts still being prefilled, so new requests join while others are mid-answer. Each
sequence samples with its own sampler (its own temperature, seed, penalties, logit bias, grammar)
from its own row of logits, and streams its own text.

Prefix reuse: a slot keeps the KV cells of its last request. A new request goes to the free slot
whose cached tokens share the longest prefix with its prompt; if another slot (busy or not) shares
a longer one, those cells are shared into the chosen slot with `llama_memory_seq_cp` instead of
being computed again (a repeated system prompt is computed once).
"""

from __future__ import annotations

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


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


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
    def __init__(self, engine: "LlamaEngine", n_slots: int, n_batch: int):
        self.engine = engine
        self.slots = [Slot(seq_id=i) for i in range(n_slots)]
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)

    # ------------------------------------------------------------------ admission

    def _admit(self, job: "_Job") -> None:
        free = [s for s in self.slots if s.job is None]
        slot = max(free, key=lambda s: (common_prefix(s.cached, job.prompt), -s.last_used))
        mem = self.engine._mem
        reuse = common_prefix(slot.cached, job.prompt)
        donor = max(self.slots, key=lambda s: common_prefix(s.cached, job.prompt))
        shared = common_prefix(donor.cached, job.prompt)
        if shared > reuse and donor is not slot:
            llama_cpp.llama_memory_seq_rm(mem, slot.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, donor.seq_id, slot.seq_id, 0, shared)
            slot.cached, reuse = donor.cached[:shared], shared
        reuse = min(reuse, len(job.prompt) - 1)       # the last prompt token must give logits
        llama_cpp.llama_memory_seq_rm(mem, slot.seq_id, reuse, -1)
        slot.cached = job.prompt[:reuse]
        slot.job, slot.prefill_at, slot.reused = job, reuse, reuse
        slot.run = self.engine._start_run(job)

    def _release(self, slot: Slot) -> None:
        if slot.run is not None:
            self.engine._end_run(slot.run)
        slot.job, slot.run, slot.logits_index = None, None, -1
        slot.last_used = time.monotonic()

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
        """Out of KV cells (rc 1) or an error: free idle slots' cells, and fail the sequence that
        holds the most cells so that the others can go on."""
        log.warning("llama_decode returned %d with %d active sequences", rc, len(active))
        mem = self.engine._mem
        for s in self.slots:
            if s.job is None and s.cached:
                llama_cpp.llama_memory_seq_rm(mem, s.seq_id, -1, -1)
                s.cached = []
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

