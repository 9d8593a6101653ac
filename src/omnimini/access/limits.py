"""RPM and TPM per key and model, exact under concurrency and across processes sharing the store.

A sliding-window log in the database (`access_rate_events`): admitting a request is one write
transaction that counts the key's requests and tokens for the model in the last `window` seconds
and, if both fit, records the new request. The transaction is serialised (SQLite: BEGIN IMMEDIATE;
PostgreSQL: a row lock on the key), so no two admissions can both see the last free slot, whichever
process they run in. Hence in every interval of `window` seconds at most `rpm` requests are
admitted and at most `tpm` tokens are reserved. A request reserves prompt + max output tokens at
admission and is settled to its real count when it finishes (OpenAI counts the same way).

Headers and the 429 follow OpenAI's rate-limit guide:
https://platform.openai.com/docs/guides/rate-limits (x-ratelimit-limit/remaining/reset-requests
and -tokens; 429 `rate_limit_exceeded` whose `type` is "requests" or "tokens", with Retry-After).
`reset-*` is the time until the oldest request in the window leaves it, i.e. until `remaining`
next goes up (the same as Retry-After when a 429 is sent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from omnimini.access.keys import Principal
from omnimini.access.tables import ApiKey, RateEvent
from omnimini.protocol.errors import RateLimitExceeded
from omnimini.store import Store

DEFAULT_WINDOW_S = 60.0          # "per minute", as OpenAI's RPM/TPM
RATE_LIMIT_DOCS = "https://platform.openai.com/docs/guides/rate-limits"


def duration(seconds: float) -> str:
    """OpenAI's reset format (Go durations): 17ms, 1s, 6m0s, 1.5s."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{secs_text}" if minutes else secs_text


@dataclass
class Admission:
    event_id: int | None
    headers: dict[str, str] = field(default_factory=dict)
    at: float | None = None          # when it was admitted (the store's order of admissions)


class RateLimiter:
    def __init__(self, store: Store, window: float = DEFAULT_WINDOW_S, clock=time.time):
        self.store = store
        self.window = window
        self.clock = clock

    def admit(self, who: Principal, model: str, tokens: int) -> Admission:
        """Admit one request for `tokens` (prompt + max output) or raise RateLimitExceeded."""
        if who.rpm is None and who.tpm is None:
            return Admission(None)
        with self.store.write() as s:
            s.connection()                    # SQLite: BEGIN IMMEDIATE happens here and takes the write lock
            if not self.store.is_sqlite:      # PostgreSQL: serialise this key's admissions on its row
                s.execute(select(ApiKey.id).where(ApiKey.id == who.key_id).with_for_update())
            now = self.clock()               # read under the lock: admission times are in admission order
            start = now - self.window
            where = (RateEvent.key_id == who.key_id, RateEvent.model == model)
            # An admission counts for the half-open window [at, at + window): in any interval
            # [x, x + window) at most rpm requests are admitted.
            s.execute(delete(RateEvent).where(*where, RateEvent.at <= start))
            events = s.execute(select(RateEvent.at, RateEvent.tokens).where(*where)
                               .order_by(RateEvent.at, RateEvent.id)).all()
            used = sum(e.tokens for e in events)
            headers = self._headers(who, events, used, now)
            if who.rpm is not None and len(events) + 1 > who.rpm:
                wait = events[len(events) - who.rpm].at + self.window - now
                raise RateLimitExceeded(
                    f"Rate limit reached for {model} on requests per min (RPM): Limit {who.rpm}, "
                    f"Used {len(events)}, Requested 1. Please try again in {duration(wait)}. "
                    f"Visit {RATE_LIMIT_DOCS} to learn more.",
                    retry_after=wait, limit_type="requests", headers=headers)
            if who.tpm is not None and used + tokens > who.tpm:
                if tokens > who.tpm:
                    raise RateLimitExceeded(
                        f"Request too large for {model} on tokens per min (TPM): Limit {who.tpm}, "
                        f"Requested {tokens}. The input or output tokens must be reduced in order to run "
                        f"successfully (set a smaller max_tokens). Visit {RATE_LIMIT_DOCS} to learn more.",
                        retry_after=self.window, limit_type="tokens", headers=headers)
                wait, freed = self.window, 0
                for e in events:                 # the oldest leave first
                    freed += e.tokens
                    if used - freed + tokens <= who.tpm:
                        wait = e.at + self.window - now
                        break
                raise RateLimitExceeded(
                    f"Rate limit reached for {model} on tokens per min (TPM): Limit {who.tpm}, "
                    f"Used {used}, Requested {tokens}. Please try again in {duration(wait)}. "
                    f"Visit {RATE_LIMIT_DOCS} to learn more.",
                    retry_after=wait, limit_type="tokens", headers=headers)
            event = RateEvent(key_id=who.key_id, model=model, at=now, tokens=tokens)
            s.add(event)
            s.flush()
            events = [*events, event]
            return Admission(event.id, self._headers(who, events, used + tokens, now), now)

    def settle(self, admission: Admission, tokens: int) -> None:
        """Replace the reservation with the tokens really used."""
        if admission.event_id is not None:
            with self.store.write() as s:
                self.settle_in(s, admission, tokens)

    @staticmethod
    def settle_in(session, admission: Admission, tokens: int) -> None:
        if admission.event_id is not None:
            session.execute(update(RateEvent).where(RateEvent.id == admission.event_id).values(tokens=tokens))

    def _headers(self, who: Principal, events, used: int, now: float) -> dict[str, str]:
        reset = duration(events[0].at + self.window - now) if events else "0s"
        h: dict[str, str] = {}
        if who.rpm is not None:
            h |= {"x-ratelimit-limit-requests": str(who.rpm),
                  "x-ratelimit-remaining-requests": str(max(0, who.rpm - len(events))),
                  "x-ratelimit-reset-requests": reset}
        if who.tpm is not None:
            h |= {"x-ratelimit-limit-tokens": str(who.tpm),
                  "x-ratelimit-remaining-tokens": str(max(0, who.tpm - used)),
                  "x-ratelimit-reset-tokens": reset}
        return h
