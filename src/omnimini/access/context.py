"""The per-request context that ties a request to its caller: who asks, the admission under the
rate limits, and what the service reports back (the snapshot that answered and its usage).

The face that receives a request (the HTTP middleware, the batch worker) opens a `RequestContext`;
the service calls two hooks on the pipeline's path, and they do nothing when no context is open
(the in-process CLI chat, evals):

    await admit(spec, prompt_tokens, max_output_tokens)   # after validation, before generation
    report(usage)                                          # when the answer is complete
"""

from __future__ import annotations

import datetime as dt
import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

from omnimini.access.keys import Principal
from omnimini.access.limits import Admission, RateLimiter
from omnimini.models.catalog import ModelSpec
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import ModelNotFound, NotFound


@dataclass
class RequestContext:
    principal: Principal | None = None
    limiter: RateLimiter | None = None
    batch: bool = False                   # batch lines: no RPM/TPM (their own queue), half price
    started: float = field(default_factory=time.monotonic)
    spec: ModelSpec | None = None         # set by admit(): the snapshot that answers
    requested_tokens: int = 0
    admission: Admission | None = None    # None: not admitted (no limits, or rejected)
    rejected: bool = False
    usage: Usage | None = None            # set by report()
    interventions: list[dict] = field(default_factory=list)   # guards that acted (issue 7), see note_intervention

    @property
    def rate_headers(self) -> dict[str, str]:
        return self.admission.headers if self.admission else {}

    def settled_tokens(self) -> int:
        """Tokens to charge against TPM once the request ended: the real count when the service
        reported it, else the reservation (the request failed or the client went away mid-answer).
        Audio models bill seconds or characters, not tokens: nothing against TPM (issue 9)."""
        if self.spec is not None and self.spec.billing_unit != "token":
            return 0
        if self.usage is not None:
            return self.usage.total_tokens
        return self.requested_tokens


_current: ContextVar[RequestContext | None] = ContextVar("omnimini_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


@contextlib.contextmanager
def opened(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


async def admit(spec: ModelSpec, prompt_tokens: int, max_output_tokens: int) -> None:
    """Check the caller may use `spec` and admit the request under its RPM/TPM (may raise 404/429)."""
    ctx = _current.get()
    if ctx is None:
        return
    if spec.shutdown_date and dt.date.today().isoformat() >= spec.shutdown_date:
        raise NotFound(f"The model `{spec.id}` was shut down on {spec.shutdown_date} and no longer answers; "
                       "use a newer snapshot or its alias.", param="model", code="model_not_found")
    ctx.spec = spec
    ctx.requested_tokens = prompt_tokens + max_output_tokens
    who = ctx.principal
    if who is None:
        return
    if not who.may_use((spec.id, *spec.aliases)):
        raise ModelNotFound(spec.id)
    if ctx.limiter is None or ctx.batch or (who.rpm is None and who.tpm is None):
        return
    try:
        ctx.admission = await ctx.limiter.store.run(ctx.limiter.admit, who, spec.id, ctx.requested_tokens)
    except Exception:
        ctx.rejected = True
        raise


def report(usage: Usage) -> Usage:
    """Record the finished request's usage on the open context; returns `usage` unchanged."""
    ctx = _current.get()
    if ctx is not None:
        ctx.usage = usage
    return usage


def note_intervention(guard: str, reason: str, **where: object) -> None:
    """A run-time guard of the instruction hierarchy changed this request (which guard, why, where):
    kept on the open context and written with its usage row. Nothing to do without a context."""
    ctx = _current.get()
    if ctx is not None:
        ctx.interventions.append({"guard": guard, "reason": reason, **where})
