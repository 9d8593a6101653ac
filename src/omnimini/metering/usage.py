"""Writing usage rows and reading them back as a bill: totals, by model, or by day.

Cost = prompt tokens x input price + completion tokens x output price (catalog prices are USD per
million tokens). Batch requests pay half, as OpenAI's Batch API does
(https://platform.openai.com/docs/guides/batch: "50% lower costs").
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnimini.metering.tables import UsageRecord
from omnimini.models.catalog import ModelSpec
from omnimini.protocol.common import Usage
from omnimini.store import Store

BATCH_PRICE_FACTOR = 0.5
GROUPS = ("model", "day", "key")


def cost(spec: ModelSpec, usage: Usage | None, *, batch: bool = False) -> float:
    if usage is None:
        return 0.0
    return spec.cost(usage.prompt_tokens, usage.completion_tokens) * (BATCH_PRICE_FACTOR if batch else 1.0)


def record(session: Session, *, spec: ModelSpec, usage: Usage | None, endpoint: str, status: int,
           key_id: str | None, request_id: str | None = None, batch_id: str | None = None,
           latency_s: float = 0.0, created_at: float | None = None,
           interventions: list[dict] | None = None) -> UsageRecord:
    """Add one row inside the caller's transaction (so a batch line's answer and its bill commit together)."""
    row = UsageRecord(
        created_at=created_at if created_at is not None else time.time(), request_id=request_id,
        key_id=key_id, model=spec.id, endpoint=endpoint, batch_id=batch_id,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        cached_tokens=(usage.prompt_tokens_details.cached_tokens or 0) if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cost=cost(spec, usage, batch=batch_id is not None), latency_ms=latency_s * 1000, status=status,
        interventions=json.dumps(interventions) if interventions else None)
    session.add(row)
    return row


@dataclass
class UsageLine:
    group: str | None
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """'7d', '12h', '30m', an ISO date or datetime (UTC unless it says), or unix seconds."""
    if not value:
        return None
    now = time.time() if now is None else now
    m = _DURATION.match(value.strip())
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'since' must be like 7d, 12h, 2026-11-21 or unix seconds, not {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def summarize(store: Store, *, key_id: str | None = None, since: float | None = None,
              group_by: str | None = None) -> list[UsageLine]:
    """The bill: one line per group (or one total line), oldest day / largest cost first."""
    if group_by is not None and group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
    q = select(UsageRecord.created_at, UsageRecord.model, UsageRecord.key_id, UsageRecord.status,
               UsageRecord.prompt_tokens, UsageRecord.cached_tokens, UsageRecord.completion_tokens,
               UsageRecord.cost)
    if key_id is not None:
        q = q.where(UsageRecord.key_id == key_id)
    if since is not None:
        q = q.where(UsageRecord.created_at >= since)
    lines: dict[str | None, UsageLine] = {}
    with store.read() as s:
        for r in s.execute(q.execution_options(yield_per=5000)):
            if group_by == "model":
                g = r.model
            elif group_by == "day":
                g = dt.datetime.fromtimestamp(r.created_at, dt.timezone.utc).date().isoformat()
            elif group_by == "key":
                g = r.key_id or "(no key)"
            else:
                g = None
            line = lines.setdefault(g, UsageLine(g))
            line.requests += 1
            line.errors += r.status >= 400
            line.prompt_tokens += r.prompt_tokens
            line.cached_tokens += r.cached_tokens
            line.completion_tokens += r.completion_tokens
            line.total_tokens += r.prompt_tokens + r.completion_tokens
            line.cost += r.cost
    if group_by == "day":
        return sorted(lines.values(), key=lambda x: x.group)
    return sorted(lines.values(), key=lambda x: (-x.cost, x.group or ""))


def as_json(lines: list[UsageLine], *, group_by: str | None, key_id: str | None, since: float | None) -> dict:
    """The JSON of `omnimini usage --json` and GET /v1/usage (the same document)."""
    return {"object": "usage", "group_by": group_by, "key": key_id,
            "since": int(since) if since is not None else None,
            "data": [asdict(x) | {"cost": round(x.cost, 8)} for x in lines],
            "total_cost": round(sum(x.cost for x in lines), 8)}
