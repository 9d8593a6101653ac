"""Evals with openai/simple-evals' prompts and scoring, for the in-process model or any
OpenAI-compatible endpoint: MMLU, MGSM, GSM8K and HumanEval (run in a sandbox).

One file per eval (mmlu.py, mgsm.py, gsm8k.py, humaneval.py) with its prompt and answer rules at
the top; common.py holds simple-evals' shared templates and regexes; samplers.py the two targets;
runner.py and store.py run, store and resume; summary.py and report.py aggregate and report.
"""

from __future__ import annotations

from typing import Any

from omnimini.evals.types import Eval

EVAL_NAMES = ("mmlu", "mgsm", "gsm8k", "humaneval")


def make_eval(name: str, **options: Any) -> Eval:
    """The eval called `name`; options: samples (humaneval), languages (mgsm)."""
    if name == "mmlu":
        from omnimini.evals.mmlu import MMLU
        return MMLU()
    if name == "mgsm":
        from omnimini.evals.mgsm import MGSM
        return MGSM(languages=options.get("languages"))
    if name == "gsm8k":
        from omnimini.evals.gsm8k import GSM8K
        return GSM8K()
    if name == "humaneval":
        from omnimini.evals.humaneval import HumanEval
        return HumanEval(samples=options.get("samples") or 1)
    raise ValueError(f"unknown eval {name!r}; choose from {', '.join(EVAL_NAMES)}")
