"""Run an eval against a sampler: concurrent requests, every graded example stored as it completes,
a progress bar with rate and ETA, and resumption of an interrupted run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, is_dataclass
from typing import Any, Callable

from omnimini.evals.store import RunStore
from omnimini.evals.types import Eval, Example, Sampler

ProgressHook = Callable[[dict[str, Any]], None]   # called once per stored record
# A target that rejects every request (a 4xx: an unknown model, a setting it does not accept) would
# otherwise give a "finished" run of zeros that a rerun never retries: when the first this-many
# examples of a session (or all of them, if fewer) were all rejected, and no request still in flight
# is accepted either, stop and store none of them. A rejection after the first accepted request (of
# this session or of a stored one) is an example's own fault and scores 0, as in simple-evals.
REJECTED_BEFORE_STOP = 8
SETTLE_POLL_S = 0.05                     # how often a stopped run looks whether its requests in flight ended


class TargetRejects(Exception):
    """Every request of the session so far was rejected by the target."""


async def _evaluate(ev: Eval, sampler: Sampler, example: Example, session_no: int) -> dict[str, Any]:
    start = time.monotonic()
    prompt = ev.prompt(example)
    responses = [await sampler(prompt, i) for i in range(ev.samples_per_example)]
    texts = [r.text for r in responses]
    graded = await asyncio.to_thread(ev.grade, example, texts)   # HumanEval runs programs: off the loop
    details = graded.details
    if is_dataclass(details):
        details = asdict(details)
    return {
        "id": example.id,
        "prompt": prompt,
        "responses": texts,
        "extracted": graded.extracted,
        "correct": graded.correct,
        "score": graded.score,
        "metrics": graded.metrics,
        "details": details,
        "errors": [r.error for r in responses if r.error],
        "usage": {"prompt_tokens": sum(r.prompt_tokens for r in responses),
                  "completion_tokens": sum(r.completion_tokens for r in responses)},
        "seconds": round(time.monotonic() - start, 3),
        "finished_at": time.time(),
        "session": session_no,
    }


async def run(ev: Eval, sampler: Sampler, examples: list[Example], store: RunStore, *,
              concurrency: int = 1, on_record: ProgressHook | None = None,
              done: dict[str, dict] | None = None, command: str | None = None) -> int:
    """Evaluate the examples not yet in the store; return how many were evaluated now.

    Records are written by this coroutine only (one writer, whole lines, fsynced), so a kill at any
    moment loses at most the examples in flight, never a stored one.
    """
    done = store.records() if done is None else done
    pending = [e for e in examples if e.id not in done]
    session = store.start_session(len(pending), command)
    session_no = len(store.meta["sessions"])
    semaphore = asyncio.Semaphore(max(1, concurrency))
    evaluated = 0
    # Has the target accepted a request yet? A stored accepted sample says it does: a resumed run
    # whose remaining examples are the rejected kind then finishes instead of stopping on each rerun.
    accepted = any(len(r.get("errors") or []) < ev.samples_per_example for r in done.values())
    held: list[dict[str, Any]] = []       # rejected records before the first accepted one
    stop_after = min(REJECTED_BEFORE_STOP, len(pending))
    asking = asyncio.Event()              # cleared: ask nothing new until the requests in flight end
    asking.set()
    in_flight = 0

    def keep(record: dict[str, Any]) -> None:
        nonlocal evaluated
        store.append(record)
        evaluated += 1
        if on_record:
            on_record(record)

    async def one(example: Example) -> None:
        nonlocal accepted, in_flight
        async with semaphore:
            await asking.wait()
            in_flight += 1
            try:
                record = await _evaluate(ev, sampler, example, session_no)
            finally:
                in_flight -= 1
        rejected = len(record["errors"]) == ev.samples_per_example
        if not accepted and rejected:
            held.append(record)
            if len(held) >= stop_after:
                # Rejections come back at once, answers take time: before calling the target one
                # that rejects everything, let the requests in flight say whether it accepts any.
                asking.clear()
                while in_flight and not accepted:
                    await asyncio.sleep(SETTLE_POLL_S)
                if not accepted:
                    raise TargetRejects(f"the target rejected all of the first {len(held)} requests "
                                        f"({held[0]['errors'][0]}); none of them was stored")
            return
        if not accepted:
            accepted = True
            for r in held:
                keep(r)
            held.clear()
            asking.set()
        keep(record)

    try:
        async with asyncio.TaskGroup() as group:      # the first failure cancels the rest
            for example in pending:
                group.create_task(one(example))
    finally:
        store.end_session(session, evaluated)
    return evaluated
