"""A run's Markdown report with an SVG chart, and the side-by-side comparison of runs.

The chart is a small SVG written here (horizontal bars, no plotting library): the run's score
with its 95% interval beside the published rows, then the per-category scores.
"""

from __future__ import annotations

from html import escape
from typing import Any

from omnimini.evals.published import PUBLISHED, SOURCE

BAR_HEIGHT = 18
BAR_GAP = 6
LABEL_WIDTH = 230
PLOT_WIDTH = 360
Z95 = 1.96                              # normal-approximation 95% interval: score +- 1.96 stderr
OURS_COLOR, PUBLISHED_COLOR, CATEGORY_COLOR = "#2b6cb0", "#a0aec0", "#68d391"


def svg_bars(title: str, bars: list[tuple[str, float, float | None, str]]) -> str:
    """bars: (label, value in percent, half-width of an error bar or None, colour)."""
    top = 28
    height = top + len(bars) * (BAR_HEIGHT + BAR_GAP) + 24
    width = LABEL_WIDTH + PLOT_WIDTH + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<text x="4" y="16" font-weight="bold">{escape(title)}</text>']
    for tick in range(0, 101, 25):
        x = LABEL_WIDTH + PLOT_WIDTH * tick / 100
        out.append(f'<line x1="{x}" y1="{top - 4}" x2="{x}" y2="{height - 20}" stroke="#e2e8f0"/>'
                   f'<text x="{x}" y="{height - 6}" text-anchor="middle" fill="#718096">{tick}</text>')
    for i, (label, value, err, color) in enumerate(bars):
        y = top + i * (BAR_HEIGHT + BAR_GAP)
        w = PLOT_WIDTH * max(0.0, min(value, 100.0)) / 100
        out.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
                   f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w:.1f}" height="{BAR_HEIGHT}" fill="{color}"/>'
                   )
        end = LABEL_WIDTH + w
        if err:
            lo = LABEL_WIDTH + PLOT_WIDTH * max(0.0, value - err) / 100
            end = hi = LABEL_WIDTH + PLOT_WIDTH * min(100.0, value + err) / 100
            mid = y + BAR_HEIGHT / 2
            out.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#1a202c"/>')
        out.append(f'<text x="{end + 4:.1f}" y="{y + 13}">{value:.1f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def is_subset(summary: dict[str, Any]) -> bool:
    return summary["n"] < (summary.get("available") or summary.get("total_examples") or 0)


def _label(summary: dict[str, Any]) -> str:
    return f"{summary['model']}" + (f" (n={summary['n']})" if is_subset(summary) else "")


def chart(summary: dict[str, Any]) -> str:
    ev = summary["eval"]
    bars = [(_label(summary), 100 * summary["score"], 100 * Z95 * summary["stderr"], OURS_COLOR)]
    bars += [(model, scores[ev], None, PUBLISHED_COLOR) for model, scores in PUBLISHED.items() if ev in scores]
    categories = [(name, m) for name, m in summary["metrics"].items() if not name.startswith("subject:")]
    bars += [(f"  {name} (n={m['n']})", 100 * m["mean"], 100 * Z95 * m["stderr"], CATEGORY_COLOR)
             for name, m in categories]
    return svg_bars(f"{ev}: score (%) with 95% interval", bars)


def markdown(summary: dict[str, Any], command: str | None = None) -> str:
    ev = summary["eval"]
    if not summary.get("complete", True):
        subset = f"IN PROGRESS: {summary['n']} of {summary.get('total_examples')} done"
    else:
        subset = f"SUBSET of {summary.get('available')}" if is_subset(summary) else "the full set"
    lines = [f"# {ev} — {summary['model']}", "",
             f"- target: {summary.get('target')}",
             f"- examples: {summary['n']} ({subset})",
             f"- score: **{100 * summary['score']:.1f}%** ± {100 * summary['stderr']:.1f} (standard error)",
             f"- tokens: {summary['tokens']['prompt']:,} prompt, {summary['tokens']['completion']:,} completion",
             f"- time: {summary['time']['wall_seconds']:.0f} s wall "
             f"({summary['time']['examples_per_minute']} examples/min)",
             f"- requests refused by the target: {summary['errors']}",
             f"- empty responses (no text, not refused): {summary.get('empty_responses', 0)}",
             f"- sampler: `{summary.get('sampler')}`"]
    if command:
        lines.append(f"- command: `{command}`")
    lines += ["", "![chart](chart.svg)", "", "| metric | score % | ± stderr | n |", "|---|---|---|---|"]
    for name, m in summary["metrics"].items():
        lines.append(f"| {name} | {100 * m['mean']:.1f} | {100 * m['stderr']:.1f} | {m['n']} |")
    published = [(model, scores[ev]) for model, scores in PUBLISHED.items() if ev in scores]
    if published:
        lines += ["", f"Published ({SOURCE}):", ""] + [f"- {model}: {value}" for model, value in published]
    return "\n".join(lines) + "\n"


def compare_rows(summaries: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Columns (evals) and rows (runs, then the published models) for `omnimini eval compare`."""
    evals = sorted({s["eval"] for s in summaries} | {e for v in PUBLISHED.values() for e in v})
    rows: dict[str, dict[str, str]] = {}
    for s in summaries:
        label = s.get("label") or f"{s['model']} @ {s.get('target')}"
        cell = f"{100 * s['score']:.1f} ± {100 * s['stderr']:.1f}"
        if is_subset(s):
            cell += f" (n={s['n']})"
        rows.setdefault(label, {})[s["eval"]] = cell
    for model, scores in PUBLISHED.items():
        rows[f"{model} (published)"] = {e: f"{v:.1f}" for e, v in scores.items()}
    return ["model", *evals], [[label, *(cells.get(e, "–") for e in evals)] for label, cells in rows.items()]


def compare_markdown(summaries: list[dict[str, Any]]) -> str:
    header, rows = compare_rows(summaries)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + f"\n\nPublished rows: {SOURCE}. Runs marked (n=...) are subsets.\n"
