"""GSM8K, zero-shot chain of thought, with MGSM's English prompt and last-number rule.

Training Verifiers to Solve Math Word Problems. Karl Cobbe, Vineet Kosaraju, Mohammad Bavarian,
Mark Chen, Heewoo Jun, Lukasz Kaiser, Matthias Plappert, Jerry Tworek, Jacob Hilton, Reiichiro
Nakano, Christopher Hesse, John Schulman. https://arxiv.org/abs/2110.14168
Data: openai/grade-school-math `grade_school_math/data/test.jsonl` (1,319 problems); the target
is the number after "#### " in each answer.

simple-evals has no GSM8K eval. MGSM's English split is 250 of these same problems, so we ask
every problem with simple-evals' English MGSM instruction and score it with MGSM's rule (the last
number after the last "Answer", compared as a string). `--limit N` samples N problems with
random.Random(0), like simple-evals' MMLU and HumanEval.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from omnimini.evals.data import BadData, locate
from omnimini.evals.mgsm import LANG_TO_ANSWER_PREFIX, LANG_TO_INSTRUCTIONS, parse_answer, score_mgsm
from omnimini.evals.types import Example, Graded, Message

DATA_URL = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
LOCAL_LAYOUT = ["gsm8k/test.jsonl", "gsm8k_test.jsonl"]
HOW_TO_GET = f"Get test.jsonl from {DATA_URL} into gsm8k/test.jsonl."
TARGET_SEPARATOR = "####"              # GSM8K answers end with "#### <number>"
INSTRUCTION = LANG_TO_INSTRUCTIONS["en"]
ANSWER_PREFIX = LANG_TO_ANSWER_PREFIX["en"]
SAMPLE_SEED = 0


def target_of(answer: str) -> str:
    return answer.split(TARGET_SEPARATOR)[-1].strip().replace(",", "")


class GSM8K:
    name = "gsm8k"
    samples_per_example = 1

    def load(self, data_dir: Path | None, cache_dir: Path, limit: int | None) -> list[Example]:
        found = locate(self.name, data_dir, cache_dir, LOCAL_LAYOUT, {"test.jsonl": DATA_URL}, HOW_TO_GET)
        path = found["test.jsonl"] if isinstance(found, dict) else found
        examples = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    row = json.loads(line)
                    if TARGET_SEPARATOR not in row["answer"]:
                        raise ValueError(f"no {TARGET_SEPARATOR!r} before the final answer")
                    example = Example(id=str(i), data={"question": row["question"],
                                                       "target": target_of(row["answer"])})
                except (ValueError, KeyError, TypeError) as e:
                    raise BadData(f"{path}:{i + 1}: not a GSM8K line ({{\"question\", \"answer\": "
                                  f"\"... #### N\"}}): {type(e).__name__}: {e}") from None
                examples.append(example)
        self.available = len(examples)
        if limit:
            examples = random.Random(SAMPLE_SEED).sample(examples, min(limit, len(examples)))
        return examples

    def prompt(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": INSTRUCTION.format(input=example.data["question"])}]

    def grade(self, example: Example, responses: list[str]) -> Graded:
        extracted = parse_answer(responses[0], ANSWER_PREFIX)
        score = float(score_mgsm(example.data["target"], extracted))
        return Graded(score=score, extracted=extracted or None, correct=example.data["target"])
