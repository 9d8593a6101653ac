"""Prompts, answer regexes and normalizers shared by the evals, as openai/simple-evals defines them.

Source: openai/simple-evals `common.py` (the final version of the repository, 2025; MIT licence).
Every constant below is simple-evals' value; where we differ it says so.

The second MULTILINGUAL_ANSWER_REGEXES entry, marked "# Korean invisible character" in simple-evals,
is "Answer\\s*:" followed by six ZERO WIDTH SPACEs (U+200B). The characters are invisible in every
rendered copy; they were read byte for byte from the `simple_evals/common.py` in NVIDIA's
`nvidia-simple-evals` wheel on PyPI (26.3), whose list starts with simple-evals' entries unchanged
(NVIDIA's additions follow them), and are written here as escapes.
"""

from __future__ import annotations

import re

# simple-evals `common.QUERY_TEMPLATE_MULTICHOICE`: zero-shot chain of thought, the letter on the last line.
QUERY_TEMPLATE_MULTICHOICE = """
Answer the following multiple choice question. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.

{Question}

A) {A}
B) {B}
C) {C}
D) {D}
""".strip()

# simple-evals `common.ANSWER_PATTERN_MULTICHOICE` (GPQA's pattern; MMLU uses the multilingual list below).
ANSWER_PATTERN_MULTICHOICE = r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?"

# simple-evals `common.MULTILINGUAL_ANSWER_PATTERN_TEMPLATE`: "{}" is one of the regexes below. The
# letter may also be written with the Arabic, Bengali or full-width Japanese letters for A-D.
MULTILINGUAL_ANSWER_PATTERN_TEMPLATE = "(?i){}[ \t]*([A-D]|[أ-د]|[অ]|[ব]|[ড]|[ঢ]|[Ａ]|[Ｂ]|[Ｃ]|[Ｄ])"

# simple-evals `common.MULTILINGUAL_ANSWER_REGEXES`, in order (the first that matches wins); all the
# ways "Answer" is written in different languages.
MULTILINGUAL_ANSWER_REGEXES = [
    r"Answer\s*:",
    "Answer\\s*:\u200b\u200b\u200b\u200b\u200b\u200b",  # Korean invisible character (see the docstring)
    r"উত্তর\s*:",
    r"उत्तर\s*:",
    r"উত্তরঃ",
    r"উত্তর\s*:",
    r"Antwort\s*:",
    r"답변\s*:",
    r"정답\s*:",
    r"답\s*:",
    r"答案\s*：",
    r"答案\s*:",
    r"答\s*：",
    r"答\s*:",
    r"答复\s*：",
    r"答曰\s*：",
    r"الإجابة:",
    r"الجواب:",
    r"إجابة:",
    r"الإجابة النهائية:",
    r"الإجابة الصحيحة:",
    r"الإجابة الصحيحة هي:",
    r"الإجابة هي:",
    r"الجواب النهائي:",
    r"Respuesta\s*:",
    r"Risposta\s*:",
    r"答え\s*:",
    r"答え\s*：",
    r"回答\s*:",
    r"回答\s*：",
    r"解答\s*:",
    r"Jawaban\s*:",
    r"Réponse\s*:",
    r"Resposta\s*:",
    r"Jibu\s*:",
    r"Idahun\s*:",
    r"Ìdáhùn\s*:",
    r"Idáhùn\s*:",
    r"Àmọ̀nà\s*:",
    r"Àdáhùn\s*:",
    r"Ànúgọ\s*:",
    r"Àṣàyàn\s*:",
]

# simple-evals `common.normalize_response`: markdown and LaTeX wrappers that would hide "Answer: X".
# Order matters (e.g. "$\boxed{" before "$"), so it is a list of (old, new) applied in turn.
RESPONSE_REPLACEMENTS = [
    ("**", ""), ("$\\boxed{", ""), ("}$", ""), ("\\$", ""), ("$\\text{", ""), ("$", ""),
    ("\\mathrm{", ""), ("\\{", ""), ("\\text", ""), ("\\(", ""), ("\\mathbf{", ""), ("{", ""),
    ("\\boxed", ""),
]

# simple-evals `common.normalize_extracted_answer`: Arabic, Bengali and full-width Japanese letters
# for A-D become " A".." D" (then the whole is stripped).
EXTRACTED_REPLACEMENTS = [
    ("أ", " A"), ("ب", " B"), ("ج", " C"), ("د", " D"),
    ("অ", " A"), ("ব", " B"), ("ড", " C"), ("ঢ", " D"),
    ("Ａ", " A"), ("Ｂ", " B"), ("Ｃ", " C"), ("Ｄ", " D"),
]

# simple-evals' ChatCompletionSampler as configured for "gpt-4o-mini-2024-07-18" in simple_evals.py:
# the API system message, temperature 0.5 (the sampler's default) and max_tokens 2048.
SYSTEM_MESSAGE = "You are a helpful assistant."
TEMPERATURE = 0.5
MAX_TOKENS = 2048

_MULTILINGUAL_PATTERNS = [re.compile(MULTILINGUAL_ANSWER_PATTERN_TEMPLATE.format(r))
                          for r in MULTILINGUAL_ANSWER_REGEXES]


def format_multichoice_question(row: dict[str, str]) -> str:
    return QUERY_TEMPLATE_MULTICHOICE.format(**row)


def normalize_response(response: str) -> str:
    for old, new in RESPONSE_REPLACEMENTS:
        response = response.replace(old, new)
    return response


def normalize_extracted_answer(extracted: str) -> str:
    for old, new in EXTRACTED_REPLACEMENTS:
        extracted = extracted.replace(old, new)
    return extracted.strip()


def extract_multichoice_answer(response_text: str) -> str | None:
    """MMLU's rule: normalize, then the first regex of the list that matches anywhere gives the letter."""
    text = normalize_response(response_text)
    for pattern in _MULTILINGUAL_PATTERNS:
        match = pattern.search(text)
        if match:
            return normalize_extracted_answer(match.group(1))
    return None
