"""Run the hierarchy suite once per defence policy and write one report: per category, the paper's
baseline and trained numbers beside ours for the model alone (`none`), the prompt-only baseline
(`prompt`) and the full run-time defences (`full`), with an SVG chart.

In-process, the policy is set on the model's catalog entry (the pipeline is the same as the
server's). Against an endpoint the server decides: run once per API key that carries the policy
(`omnimini keys create --hierarchy NAME`), passing `--defences NAME --api-key KEY`.
Each defence's samples are stored under OUT/<defence>/ and a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from html import escape
from pathlib import Path
from typing import Any, Callable

from omnimini.evals.hierarchy.paper import PAPER
from omnimini.evals.hierarchy.suite import COMPLIANCE, NEEDS_JUDGE, NOT_RUN, HierarchyEval
from omnimini.evals.runner import run
from omnimini.evals.store import RunStore
from omnimini.models.catalog import Catalog

TEMPERATURE = 0.0                 # greedy: the attack either works on this model or not, reproducibly
MAX_TOKENS = 96                   # enough for every exact check (a leak shows in its first sentences)
Z95 = 1.959964                   # two-sided 95% normal quantile, for the Wilson score interval
COLORS = {"paper baseline": "#cbd5e0", "paper trained": "#718096", "none": "#fc8181", "prompt": "#f6ad55",
          "full": "#2b6cb0"}


def policy_catalog(catalog: Catalog, defence: str) -> Catalog:
    return Catalog([dataclasses.replace(s, hierarchy=defence) if s.kind == "chat" else s for s in catalog.specs()])


def _sends_tools(sampler_class):
    """The sampler, sending a Conversation's `tools` with its messages (a tool-calling conversation is
    rendered with its tools' definitions, as a real client sends it)."""
    class ToolSampler(sampler_class):
        def body(self, messages, sample=0):
            body = super().body(list(messages), sample)
            if getattr(messages, "tools", None):
                body["tools"] = messages.tools
            return body
    ToolSampler.__name__ = f"Tool{sampler_class.__name__}"
    return ToolSampler


def wilson(successes: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval for a proportion, in % (Wilson 1927; sound near 0 and 100%)."""
    if n == 0:
        return (0.0, 100.0)
    p = successes / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


async def run_one(ev: HierarchyEval, examples, out: Path, *, model: str, defence: str, base_url: str | None,
                  api_key: str, settings, max_tokens: int, seed: int | None,
                  on_record: Callable[[dict], None] | None = None) -> list[dict]:
    from omnimini.evals.samplers import HTTPSampler, LocalSampler

    config = {"system_message": None, "temperature": TEMPERATURE, "max_tokens": max_tokens, "seed": seed}
    store = RunStore(out / defence)
    done = store.open({"eval": "hierarchy", "model": model, "target": base_url or "in-process",
                       "limit": len(examples), "samples_per_example": 1, "sampler": config,
                       "options": {"defences": defence}})
    if any(e.id not in done for e in examples):
        if base_url:
            sampler = _sends_tools(HTTPSampler)(model, base_url=base_url, api_key=api_key, **config)
        else:
            sampler = _sends_tools(LocalSampler)(model, catalog=policy_catalog(settings.catalog(), defence),
                                                 data_dir=settings.data_path, threads=settings.threads, **config)
        try:
            await run(ev, sampler, examples, store, concurrency=8 if base_url else 1, on_record=on_record, done=done)
        finally:
            await sampler.close()
    ids = {e.id for e in examples}
    records = [r for r in store.records().values() if r["id"] in ids]
    store.close()
    return records


def summarize(records_by_defence: dict[str, list[dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """{defence: {category: {"score": %, "n": count, "ci95": [low, high], "unjudged": count}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for defence, records in records_by_defence.items():
        cats: dict[str, list[float]] = {}
        unjudged: dict[str, int] = {}
        for r in records:
            for c, v in r["metrics"].items():
                cats.setdefault(c, []).append(v)
            if (r.get("details") or {}).get("judge_error"):
                c = r["id"].split("/")[0]
                unjudged[c] = unjudged.get(c, 0) + 1
        out[defence] = {c: {"score": 100 * sum(v) / len(v), "n": len(v), "ci95": list(wilson(sum(v), len(v))),
                            "unjudged": unjudged.get(c, 0)} for c, v in cats.items()}
        for c, k in unjudged.items():
            out[defence].setdefault(c, {"score": None, "n": 0, "ci95": None, "unjudged": k})
    return out


def _cell(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _ours(entry: dict) -> str:
    if not entry or entry.get("score") is None:
        return "–"
    low, high = entry.get("ci95") or (None, None)
    interval = f" [{low:.0f}–{high:.0f}]" if low is not None else ""
    unjudged = f" ({entry['unjudged']} unjudged)" if entry.get("unjudged") else ""
    return f"{entry['score']:.1f}{interval}{unjudged}"


def markdown(model: str, target: str, table: dict, categories: list[str], notes: list[str], command: str,
             not_run: list[str] | None = None) -> str:
    defences = list(table)
    lines = [f"# Instruction hierarchy · {model} ({target})", "",
             f"`{command}`", "",
             "Robustness % (the attack failed) or compliance % (the legitimate instruction was followed), "
             "with the 95% Wilson interval; exact checks, or the judge model for "
             f"{' and '.join(NEEDS_JUDGE)}. Paper: Wallace et al. 2024, GPT-3.5 Turbo without / with the "
             "instruction hierarchy.", "",
             "| category | kind | paper baseline | paper trained | " + " | ".join(f"ours: {d}" for d in defences) + " | n |",
             "|---|---|---|---|" + "---|" * len(defences) + "---|"]
    not_run = not_run or []
    for c in categories:
        base, trained = PAPER.get(c, (None, None))
        kind = "compliance" if c in COMPLIANCE else "robustness"
        if c in not_run:
            lines.append(f"| {c} | {kind} | {_cell(base)} | {_cell(trained)} | "
                         + " | ".join(NOT_RUN for _ in defences) + " | 0 |")
            continue
        ours = [_ours(table[d].get(c, {})) for d in defences]
        n = max((table[d].get(c, {}).get("n", 0) for d in defences), default=0)
        lines.append(f"| {c} | {kind} | {_cell(base)} | {_cell(trained)} | " + " | ".join(ours) + f" | {int(n)} |")
    lines += ["", "![chart](chart.svg)", ""]
    if notes:
        lines += ["Notes:", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def chart(model: str, table: dict, categories: list[str]) -> str:
    """Grouped horizontal bars per category: paper baseline/trained, then ours per defence."""
    series = ["paper baseline", "paper trained", *table]
    bar, gap, label_w, plot_w = 9, 8, 150, 380
    height = 40 + len(categories) * (len(series) * bar + gap) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 60}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="4" y="16" font-weight="bold">Instruction hierarchy: {escape(model)} (% robust / compliant)</text>']
    for k, name in enumerate(series):
        out.append(f'<rect x="{label_w + 90 * k}" y="{height - 16}" width="10" height="10" '
                   f'fill="{COLORS.get(name, "#68d391")}"/><text x="{label_w + 90 * k + 14}" y="{height - 7}">'
                   f'{escape(name)}</text>')
    y = 30
    for c in categories:
        base, trained = PAPER.get(c, (None, None))
        values = [base, trained, *[(table[d].get(c) or {}).get("score") for d in table]]
        out.append(f'<text x="{label_w - 6}" y="{y + len(series) * bar / 2 + 4}" text-anchor="end">{escape(c)}</text>')
        for k, (name, v) in enumerate(zip(series, values)):
            if v is not None:
                out.append(f'<rect x="{label_w}" y="{y + k * bar}" width="{plot_w * v / 100:.1f}" height="{bar - 1}" '
                           f'fill="{COLORS.get(name, "#68d391")}"/>')
        y += len(series) * bar + gap
    out.append("</svg>")
    return "\n".join(out)


def write_report(out: Path, *, model: str, target: str, records: dict[str, list[dict]], categories: list[str],
                 notes: list[str], command: str, not_run: list[str] | None = None,
                 judge: dict | None = None) -> dict[str, Any]:
    table = summarize(records)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"eval": "hierarchy", "model": model, "target": target, "scores": table, "paper": PAPER,
               "not_run": {c: NOT_RUN for c in not_run or []}, "judge": judge, "notes": notes,
               "written": time.time()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "report.md").write_text(markdown(model, target, table, categories, notes, command, not_run))
    (out / "chart.svg").write_text(chart(model, table, categories))
    return summary
