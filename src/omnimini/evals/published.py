"""Published scores to compare with: the small-model rows of the GPT-4o mini launch.

Source: OpenAI, "GPT-4o mini: advancing cost-efficient intelligence", 2024-07-18
(https://openai.com/index/gpt-4o-mini-advancing-cost-efficient-intelligence/), the evaluation
chart, all measured by OpenAI with simple-evals. The gpt-4o-mini-2024-07-18 and Gemini 1.5 Flash
values are also in the simple-evals README's results table (MMLU, MGSM, HumanEval). The launch did
not report GSM8K, so there is no published row for it here. Percentages; HumanEval is pass@1.
"""

from __future__ import annotations

SOURCE = "GPT-4o mini launch, OpenAI, 2024-07-18 (simple-evals)"

PUBLISHED: dict[str, dict[str, float]] = {
    "gpt-4o-mini-2024-07-18": {"mmlu": 82.0, "mgsm": 87.0, "humaneval": 87.2},
    "gemini-1.5-flash": {"mmlu": 77.9, "mgsm": 75.5, "humaneval": 71.5},
    "claude-3-haiku": {"mmlu": 73.8, "mgsm": 71.7, "humaneval": 75.9},
}
