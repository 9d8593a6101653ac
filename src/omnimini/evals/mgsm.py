"""MGSM: grade-school math in 11 languages, zero-shot chain of thought, as simple-evals runs it.

Language Models are Multilingual Chain-of-Thought Reasoners. Freda Shi, Mirac Suzgun, Markus
Freitag, Xuezhi Wang, Suraj Srivats, Soroush Vosoughi, Hyung Won Chung, Yi Tay, Sebastian Ruder,
Denny Zhou, Dipanjan Das, Jason Wei. https://arxiv.org/abs/2210.03057
Data: google-research/url-nlp `mgsm/` (250 problems x 11 languages).
Reference implementation: openai/simple-evals `mgsm_eval.py`: the localized instruction, then the
last number after the last localized answer prefix, compared as a string with the target.

Differences from simple-evals: none in prompts or scoring. `--limit N` takes the first N problems
of each language, as simple-evals' `num_examples_per_lang` does (so 11 x N in all). A target that
refuses a request scores 0 with an empty response, as simple-evals' `except: response_text = ""`.
"""

from __future__ import annotations

import re
from pathlib import Path

from omnimini.evals.data import BadData, DataNotFound, find_local, locate
from omnimini.evals.types import Example, Graded, Message

ALL_LANGUAGES = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
LATIN_LANGUAGES = ["de", "en", "es", "fr", "sw"]
NON_LATIN_LANGUAGES = ["bn", "ja", "ru", "te", "th", "zh"]

# simple-evals `mgsm_eval.LANG_TO_FPATH`.
DATA_URL = "https://openaipublic.blob.core.windows.net/simple-evals/mgsm_{lang}.tsv"
LOCAL_LAYOUT = ["mgsm", "."]
HOW_TO_GET = ("Get the 11 TSVs from https://github.com/google-research/url-nlp/tree/main/mgsm "
              f"(or {DATA_URL.format(lang='LANG')}) into mgsm/mgsm_LANG.tsv.")

# simple-evals `mgsm_eval.LANG_TO_INSTRUCTIONS`, verbatim (typos included: they define the prompt).
LANG_TO_INSTRUCTIONS = {
    "en": """Solve this math problem. Give the reasoning steps before giving the final answer on the last line by itself in the format of "Answer:". Do not add anything other than the integer answer after "Answer:".

{input}""",
    "bn": """এই গণিতের সমস্যাটি সমাধান করুন। চূড়ান্ত উত্তর দেওয়ার আগে যুক্তিসম্পন্ন পদক্ষেপ প্রদান করুন। চূড়ান্ত উত্তরটি একক সংখ্যা হিসাবে "উত্তর:" এর পরে শেষ লাইনে দিন। "উত্তর:" এর পরে অন্য কিছু যুক্ত করবেন না।.

{input}""",
    "de": """Löse dieses Mathematikproblem. Gib die Schritte zur Begründung an, bevor du die endgültige Antwort in der letzten Zeile alleine im Format "Antwort:" gibst. Füge nichts anderes als die ganzzahlige Antwort nach "Antwort:" hinzu.

{input}""",
    "es": """Resuelve este problema matemático. Proporciona los pasos de razonamiento antes de dar la respuesta final en la última línea por sí misma en el formato de "Respuesta:". No añadas nada más que la respuesta entera después de "Respuesta:".

{input}""",
    "fr": """Résolvez ce problème de mathématiques. Donnez les étapes de raisonnement avant de fournir la réponse finale sur la dernière ligne elle-même dans le format de "Réponse:". N'ajoutez rien d'autre que la réponse entière après "Réponse:".

{input}""",
    "ja": """の数学の問題を解いてください。最終的な答えを出す前に、解答の推論過程を記述してください。そして最後の行には "答え:" の形式で答えを記述し、その後には整数の答え以外何も追加しないでください。

{input}""",
    "ru": """Решите эту математическую задачу. Объясните шаги рассуждения перед тем, как дать окончательный ответ в последней строке сам по себе в формате "Ответ:". Не добавляйте ничего, кроме целочисленного ответа после "Ответ:".

{input}""",
    "sw": """Suluhisha tatizo hili la hesabu. Toa hatua za mantiki kabla ya kutoa jibu la mwisho kwenye mstari wa mwisho peke yake katika muundo wa "Jibu:". Usiongeze chochote kingine isipokuwa jibu la integer baada ya "Jibu:".

{input}""",
    "te": """ఈ గణిత సమస్యను పరిష్కరించండి. చివరి సమాధానాన్ని ఇవ్వదానికి ముందు తర్కాత్మక అదుగులను ఇవ్వండి. చివరి పంక్తిలో మాత్రమే 'సమాధానం:' అనే ఆకారంలో చివరి సమాధానాద్ని ఇవ్వండి సమాధానం: తర్వాత పూర్ణాంక సమాధానానికి తప్పించి ఎదేనా చేర్చవద్దు.

{input}""",
    "th": """แก้ปัญหาคณิตศาสตร์นี้ ให้ให้ขั้นตอนการใช้เหตุผลก่อนที่จะให้คำตอบสุดท้ายในบรรทัดสุดท้ายโดยอยู่ในรูปแบบ "คำตอบ:" ไม่ควรเพิ่มอะไรนอกจากคำตอบที่เป็นจำนวนเต็มหลังจาก "คำตอบ:"

{input}""",
    "zh": """解决这个数学问题。在最后一行给出答案前，请提供推理步骤。最后一行应该以 "答案: " 的形式独立给出答案。在 "答案：" 后不要添加除整数答案之外的任何内容。

{input}""",
}

# simple-evals `mgsm_eval.LANG_TO_ANSWER_PREFIX`.
LANG_TO_ANSWER_PREFIX = {
    "en": "Answer",
    "bn": "উত্তর",
    "de": "Antwort",
    "es": "Respuesta",
    "fr": "Réponse",
    "ja": "答え",
    "ru": "Ответ",
    "sw": "Jibu",
    "te": "సమాధానం",
    "th": "คำตอบ",
    "zh": "答案",
}

# simple-evals `mgsm_eval.parse_answer`: every number (decimals included) after the prefix.
NUMBER_PATTERN = r"\d+\.?\d*"


def parse_answer(answer: str, answer_prefix: str) -> str:
    """The last number after the last answer prefix, commas dropped; "" when there is none.

    As simple-evals: Python's \\d also matches other scripts' digits (e.g. Bengali), which then
    never equal the ASCII target.
    """
    if answer_prefix not in answer:
        return ""
    answer_text = answer.split(answer_prefix)[-1].strip()
    numbers = re.findall(NUMBER_PATTERN, answer_text.replace(",", ""))
    return numbers[-1].rstrip(".") if numbers else ""


def score_mgsm(target: str, prediction: str) -> bool:
    """simple-evals `mgsm_eval.score_mgsm`: trailing ".0" dropped, commas dropped, then string equality."""
    if "." in prediction:
        prediction = prediction.rstrip("0").rstrip(".")
    return target.replace(",", "") == prediction.replace(",", "")


def read_tsv(path: Path, lang: str) -> list[dict[str, str]]:
    examples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise BadData(f"{path}:{n}: expected 2 tab-separated fields (problem, answer), got {len(fields)}")
        inputs, targets = fields
        if "." in targets:       # simple-evals asserts the same: MGSM's answers are integers
            raise BadData(f"{path}:{n}: target {targets} contains a decimal point.")
        examples.append({"inputs": inputs, "targets": targets, "lang": lang})
    return examples


class MGSM:
    name = "mgsm"
    samples_per_example = 1

    def __init__(self, languages: list[str] | None = None):
        self.languages = languages or ALL_LANGUAGES
        unknown = set(self.languages) - set(ALL_LANGUAGES)
        if unknown:
            raise ValueError(f"unknown MGSM languages {sorted(unknown)}; choose from {ALL_LANGUAGES}")

    def _paths(self, data_dir: Path | None, cache_dir: Path) -> dict[str, Path]:
        if data_dir is not None:
            paths = {}
            for lang in self.languages:
                found = find_local(data_dir, [f"mgsm/mgsm_{lang}.tsv", f"mgsm_{lang}.tsv"])
                if found is None:
                    raise DataNotFound(f"mgsm: no mgsm_{lang}.tsv under {data_dir}. {HOW_TO_GET}")
                paths[lang] = found
            return paths
        found = locate(self.name, None, cache_dir, [f"mgsm/mgsm_{lang}.tsv" for lang in self.languages],
                       {f"mgsm_{lang}.tsv": DATA_URL.format(lang=lang) for lang in self.languages},
                       HOW_TO_GET)
        return {lang: found[f"mgsm_{lang}.tsv"] for lang in self.languages}

    def load(self, data_dir: Path | None, cache_dir: Path, limit: int | None) -> list[Example]:
        examples = []
        self.available = 0
        for lang, path in self._paths(data_dir, cache_dir).items():
            rows = read_tsv(path, lang)
            self.available += len(rows)
            examples += [Example(id=f"{lang}/{i}", data=row) for i, row in enumerate(rows[:limit] if limit else rows)]
        return examples

    def prompt(self, example: Example) -> list[Message]:
        instruction = LANG_TO_INSTRUCTIONS[example.data["lang"]]
        return [{"role": "user", "content": instruction.format(input=example.data["inputs"])}]

    def grade(self, example: Example, responses: list[str]) -> Graded:
        lang = example.data["lang"]
        extracted = parse_answer(responses[0], LANG_TO_ANSWER_PREFIX[lang])
        score = float(score_mgsm(example.data["targets"], extracted))
        group = "group_latin" if lang in LATIN_LANGUAGES else "group_non_latin"
        return Graded(score=score, extracted=extracted or None, correct=example.data["targets"],
                      metrics={lang: score, group: score})
