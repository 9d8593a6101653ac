"""API keys, rate limits and usage in the store, without a model (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from sqlalchemy import select

from omnimini.access.keys import KEY_PREFIX, Keys
from omnimini.access.limits import RateLimiter, duration
from omnimini.access.tables import ApiKey
from omnimini.metering.usage import parse_since, record, summarize
from omnimini.models.catalog import ModelSpec
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import RateLimitExceeded
from omnimini.store import Store
from store_fixtures import pg_server, store_url  # noqa: F401

SPEC = ModelSpec(id="m-2026-01-01", source="x", aliases=("m",), input_price=0.15, output_price=0.60)


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_keys_are_stored_hashed_and_revocable(store_url):
    keys = Keys(Store.open(store_url))
    created = keys.create("app1", rpm=60, tpm=1000, models=["m"])
    assert created.secret.startswith(KEY_PREFIX) and len(created.secret) > 40
    with keys.store.read() as s:
        row = s.scalars(select(ApiKey)).one()
    assert created.secret not in (row.hash, row.prefix) and len(row.hash) == 64
    who = keys.verify(created.secret)
    assert who and who.name == "app1" and (who.rpm, who.tpm, who.models) == (60, 1000, ("m",))
    assert who.may_use(("m-2026-01-01", "m")) and not who.may_use(("other",))
    assert keys.verify(created.secret + "x") is None and keys.verify("") is None
    keys.revoke("app1")
    assert keys.verify(created.secret) is None


def test_rpm_window_retry_after_and_headers(store_url):
    store, clock = Store.open(store_url), Clock()
    who = Keys(store).create("a", rpm=3).principal
    limiter = RateLimiter(store, window=60, clock=clock)
    first = limiter.admit(who, "m", 10)
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    clock.t += 10
    limiter.admit(who, "m", 10)
    clock.t += 10
    third = limiter.admit(who, "m", 10)
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert third.headers["x-ratelimit-reset-requests"] == "40s"     # the first leaves the window at +60
    clock.t += 5
    with pytest.raises(RateLimitExceeded) as e:
        limiter.admit(who, "m", 10)
    assert e.value.status == 429 and e.value.code == "rate_limit_exceeded" and e.value.type == "requests"
    assert e.value.retry_after == pytest.approx(35)
    assert e.value.headers["retry-after"] == "35"
    assert e.value.headers["x-ratelimit-limit-requests"] == "3"
    limiter.admit(who, "other-model", 10)            # limits are per model
    clock.t += 35                                    # exactly when the first admission leaves
    limiter.admit(who, "m", 10)
    with pytest.raises(RateLimitExceeded):
        limiter.admit(who, "m", 10)


def test_tpm_reserves_then_settles(store_url):
    store, clock = Store.open(store_url), Clock()
    who = Keys(store).create("a", tpm=100).principal
    limiter = RateLimiter(store, window=60, clock=clock)
    a = limiter.admit(who, "m", 80)                  # prompt + max_tokens reserved
    with pytest.raises(RateLimitExceeded) as e:
        limiter.admit(who, "m", 30)
    assert e.value.type == "tokens" and e.value.headers["x-ratelimit-remaining-tokens"] == "20"
    limiter.settle(a, 25)                            # it really used 25
    b = limiter.admit(who, "m", 30)
    assert b.headers["x-ratelimit-remaining-tokens"] == "45"
    with pytest.raises(RateLimitExceeded, match="Request too large"):
        limiter.admit(who, "m", 101)


def _admit_many(url: str, key_id: str, n: int, out) -> None:
    from omnimini.access.keys import Principal
    store = Store(url)
    limiter = RateLimiter(store, window=600)
    who = Principal(key_id, "k", rpm=50, tpm=50 * 7)
    ok = 0
    for _ in range(n):
        try:
            limiter.admit(who, "m", 7)
            ok += 1
        except RateLimitExceeded:
            pass
    out.put(ok)
    store.close()


def test_limits_are_exact_across_threads_and_processes(store_url):
    """8 threads and 2 processes race for 50 slots: exactly 50 are admitted."""
    store = Store.open(store_url)
    key = Keys(store).create("race", rpm=50, tpm=350).principal
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_admit_many, args=(store_url, key.key_id, 20, results)) for _ in range(2)]
    threads = [threading.Thread(target=_admit_many, args=(store_url, key.key_id, 20, results)) for _ in range(8)]
    for t in [*procs, *threads]:
        t.start()
    for t in [*procs, *threads]:
        t.join(120)
    assert sum(results.get(timeout=10) for _ in range(10)) == 50


def test_usage_rows_cost_and_grouping(store_url):
    store = Store.open(store_url)
    day1 = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, 0))
    with store.write() as s:
        record(s, spec=SPEC, usage=Usage.of(1_000_000, 0), endpoint="/v1/chat/completions", status=200,
               key_id="k1", created_at=day1)
        record(s, spec=SPEC, usage=Usage.of(0, 1_000_000), endpoint="/v1/chat/completions", status=200,
               key_id="k2", created_at=day1 + 86400)
        record(s, spec=SPEC, usage=Usage.of(1_000_000, 1_000_000), endpoint="/v1/chat/completions", status=200,
               key_id="k1", batch_id="batch_1", created_at=day1 + 86400)
        record(s, spec=SPEC, usage=None, endpoint="/v1/chat/completions", status=429, key_id="k1",
               created_at=day1 + 86400)
    [total] = summarize(store)
    assert total.requests == 4 and total.errors == 1
    assert total.cost == pytest.approx(0.15 + 0.60 + (0.15 + 0.60) / 2)    # batch at half price
    by_day = summarize(store, group_by="day")
    assert [d.requests for d in by_day] == [1, 3]
    k1 = summarize(store, key_id="k1", since=day1 + 3600)
    assert k1[0].requests == 2 and k1[0].cost == pytest.approx(0.375)
    assert summarize(store, group_by="model")[0].group == "m-2026-01-01"


def test_since_and_duration_formats():
    assert parse_since("7d", now=1000 * 86400) == 993 * 86400
    assert parse_since("2026-11-21") == parse_since("2026-11-21T00:00:00+00:00")
    with pytest.raises(ValueError):
        parse_since("yesterday")
    assert [duration(x) for x in (0.017, 1, 1.5, 360)] == ["17ms", "1s", "1.5s", "6m0s"]


def test_sliding_window_holds_in_every_interval(store_url):
    """Threads hammer a short window: admission times never put more than rpm in any window."""
    from test_platform_http import _max_in_window
    store = Store.open(store_url)
    who = Keys(store).create("w", rpm=5).principal
    def slow_clock() -> float:        # other threads get to run between reading the clock and using it
        now = time.time()
        time.sleep(0.002)
        return now

    limiter = RateLimiter(store, window=0.3, clock=slow_clock)
    times: list[float] = []
    stop = time.monotonic() + 1.5

    def hammer() -> None:
        while time.monotonic() < stop:
            try:
                times.append(limiter.admit(who, "m", 1).at)
            except RateLimitExceeded:
                pass

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _max_in_window(sorted(times), 0.3) == 5 and len(times) >= 15
