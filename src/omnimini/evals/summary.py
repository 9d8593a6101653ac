"""The summary of a run: score with its standard error, per-category metrics, tokens and time.

Aggregation follows simple-evals' `aggregate_results`: each metric is the mean over the examples
that report it, with "name:std" the population standard deviation. We add the standard error of
the mean (std / sqrt(n)) and the count behind every figure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any


def _stats(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {"mean": mean, "std": std, "stderr": std / math.sqrt(n), "n": n}


def _wall_seconds(meta: dict[str, Any], records: list[dict]) -> float:
    """Wall time over all sessions; a killed session ends at its last stored record."""
    total = 0.0
    for no, s in enumerate(meta.get("sessions", []), start=1):
        end = s.get("finished") or max((r["finished_at"] for r in records if r.get("session") == no),
                                       default=s["started"])
        total += max(0.0, end - s["started"])
    return total


def summarize(meta: dict[str, Any], records: list[dict], total_examples: int | None = None,
              available: int | None = None) -> dict[str, Any]:
    """total_examples: the examples asked for (after --limit); available: the full set's size."""
    if not records:
        return {"eval": meta.get("eval"), "model": meta.get("model"), "n": 0, "score": None}
    overall = _stats([r["score"] for r in records])
    by_metric: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for name, value in r["metrics"].items():
            by_metric[name].append(value)
    metrics = {name: _stats(values) for name, values in sorted(by_metric.items())}
    prompt_tokens = sum(r["usage"]["prompt_tokens"] for r in records)
    completion_tokens = sum(r["usage"]["completion_tokens"] for r in records)
    wall = _wall_seconds(meta, records)
    return {
        "eval": meta.get("eval"),
        "model": meta.get("model"),
        "target": meta.get("target"),
        "limit": meta.get("limit"),
        "n": len(records),
        "total_examples": total_examples if total_examples is not None else meta.get("examples"),
        "available": available if available is not None else meta.get("available"),
        "complete": total_examples is None or len(records) >= total_examples,
        "score": overall["mean"],
        "std": overall["std"],
        "stderr": overall["stderr"],
        "metrics": metrics,
        "errors": sum(len(r.get("errors") or []) for r in records),
        # Responses with no text that the target did not reject (content null: a tool call, a
        # refusal, text spent on hidden reasoning): each scores 0, and all of them mean a broken setup.
        "empty_responses": sum(1 for r in records for t in r.get("responses") or [] if not t)
        - sum(len(r.get("errors") or []) for r in records),
        "responses": sum(len(r.get("responses") or []) for r in records),
        "tokens": {"prompt": prompt_tokens, "completion": completion_tokens,
                   "completion_per_example": completion_tokens / len(records)},
        "time": {"wall_seconds": round(wall, 1),
                 "sample_seconds_mean": round(sum(r["seconds"] for r in records) / len(records), 3),
                 "examples_per_minute": round(60 * len(records) / wall, 2) if wall else None,
                 "completion_tokens_per_second": round(completion_tokens / wall, 1) if wall else None},
        "sampler": meta.get("sampler"),
        "sessions": len(meta.get("sessions", [])),
    }
