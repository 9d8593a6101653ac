"""MMLU, zero-shot chain of thought, as simple-evals runs it.

Measuring Massive Multitask Language Understanding. Dan Hendrycks, Collin Burns, Steven Basart,
Andy Zou, Mantas Mazeika, Dawn Song, Jacob Steinhardt. https://arxiv.org/abs/2009.03300
Reference implementation: openai/simple-evals `mmlu_eval.py` (prompt, regexes and normalizers in
common.py). Score = 1 when the extracted letter equals the answer; metrics per category.

Differences from simple-evals:
- Data: simple-evals reads its own `mmlu.csv` (14,042 rows with a Subject column). We read that
  file too when online, or the official release's per-subject CSVs (`mmlu/test/*_test.csv`),
  ordered by subject name and then file order. `--limit N` samples N with random.Random(0) as
  simple-evals does; it picks the same questions only if both files list them in the same order.
- Besides simple-evals' four categories we also report each subject.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from omnimini.evals.common import extract_multichoice_answer, format_multichoice_question
from omnimini.evals.data import BadData, locate
from omnimini.evals.types import Example, Graded, Message

DATA_URL = "https://openaipublic.blob.core.windows.net/simple-evals/mmlu.csv"
LOCAL_LAYOUT = ["mmlu/test", "mmlu/mmlu.csv", "mmlu.csv"]
HOW_TO_GET = (f"Get simple-evals' copy from {DATA_URL} or the official release "
              "(https://people.eecs.berkeley.edu/~hendrycks/data.tar; its test/ folder as mmlu/test/).")
SAMPLE_SEED = 0                        # simple-evals: random.Random(0).sample(examples, num_examples)

# simple-evals `mmlu_eval.subject2category`.
SUBJECT_TO_CATEGORY = {
    "abstract_algebra": "stem", "anatomy": "other", "astronomy": "stem", "business_ethics": "other",
    "clinical_knowledge": "other", "college_biology": "stem", "college_chemistry": "stem",
    "college_computer_science": "stem", "college_mathematics": "stem", "college_medicine": "other",
    "college_physics": "stem", "computer_security": "stem", "conceptual_physics": "stem",
    "econometrics": "social_sciences", "electrical_engineering": "stem", "elementary_mathematics": "stem",
    "formal_logic": "humanities", "global_facts": "other", "high_school_biology": "stem",
    "high_school_chemistry": "stem", "high_school_computer_science": "stem",
    "high_school_european_history": "humanities", "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences", "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences", "high_school_physics": "stem",
    "high_school_psychology": "social_sciences", "high_school_statistics": "stem",
    "high_school_us_history": "humanities", "high_school_world_history": "humanities",
    "human_aging": "other", "human_sexuality": "social_sciences", "international_law": "humanities",
    "jurisprudence": "humanities", "logical_fallacies": "humanities", "machine_learning": "stem",
    "management": "other", "marketing": "other", "medical_genetics": "other", "miscellaneous": "other",
    "moral_disputes": "humanities", "moral_scenarios": "humanities", "nutrition": "other",
    "philosophy": "humanities", "prehistory": "humanities", "professional_accounting": "other",
    "professional_law": "humanities", "professional_medicine": "other",
    "professional_psychology": "social_sciences", "public_relations": "social_sciences",
    "security_studies": "social_sciences", "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences", "virology": "other", "world_religions": "humanities",
}


def _rows_from_release(test_dir: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(test_dir.glob("*_test.csv")):
        subject = path.name[: -len("_test.csv")]
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            for row in reader:
                if len(row) != 6 or row[5] not in ("A", "B", "C", "D"):
                    raise BadData(f"{path}:{reader.line_num}: expected 6 fields (question, A, B, C, D, "
                                  f"answer letter), got {len(row)}: {str(row)[:120]}")
                q, a, b, c, d, answer = row
                rows.append({"Question": q, "A": a, "B": b, "C": c, "D": d, "Answer": answer,
                             "Subject": subject})
    return rows


def _rows_from_simple_evals_csv(path: Path) -> list[dict[str, str]]:
    keys = ("Question", "A", "B", "C", "D", "Answer", "Subject")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [k for k in keys if k not in (reader.fieldnames or [])]
        if missing:
            raise BadData(f"{path}: no column {', '.join(missing)}; simple-evals' mmlu.csv has a header "
                          f"with {', '.join(keys)}")
        rows = []
        for row in reader:
            if any(row.get(k) is None for k in keys) or None in row or row["Answer"] not in ("A", "B", "C", "D"):
                raise BadData(f"{path}:{reader.line_num}: expected the columns {', '.join(keys)} with an answer "
                              f"letter A-D, got {str(list(row.values()))[:120]}")
            rows.append({k: row[k] for k in keys})
        return rows


class MMLU:
    name = "mmlu"
    samples_per_example = 1

    def load(self, data_dir: Path | None, cache_dir: Path, limit: int | None) -> list[Example]:
        found = locate(self.name, data_dir, cache_dir, LOCAL_LAYOUT, {"mmlu.csv": DATA_URL}, HOW_TO_GET)
        path = found["mmlu.csv"] if isinstance(found, dict) else found
        rows = _rows_from_release(path) if path.is_dir() else _rows_from_simple_evals_csv(path)
        seen: dict[str, int] = {}
        examples = []
        for row in rows:
            i = seen[row["Subject"]] = seen.get(row["Subject"], -1) + 1
            examples.append(Example(id=f"{row['Subject']}/{i}", data=row))
        self.available = len(examples)
        if limit:
            examples = random.Random(SAMPLE_SEED).sample(examples, min(limit, len(examples)))
        return examples

    def prompt(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": format_multichoice_question(example.data)}]

    def grade(self, example: Example, responses: list[str]) -> Graded:
        extracted = extract_multichoice_answer(responses[0])
        correct = example.data["Answer"]
        score = 1.0 if extracted == correct else 0.0
        subject = example.data["Subject"]
        category = SUBJECT_TO_CATEGORY.get(subject, "other")
        return Graded(score=score, extracted=extracted, correct=correct,
                      metrics={category: score, f"subject:{subject}": score})
