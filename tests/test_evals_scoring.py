"""Scoring fidelity: for fixed responses, our extracted answers and scores are what simple-evals'
templates, regexes and rules give. Every expected value was worked out by hand from simple-evals'
source (mmlu_eval.py, mgsm_eval.py, humaneval_eval.py, common.py); the comment says why.
Also: the data loaders on the real data sets in ../shared/evaldata. No model is loaded here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnimini.evals import make_eval
from omnimini.evals.common import (QUERY_TEMPLATE_MULTICHOICE, extract_multichoice_answer,
                                   normalize_response)
from omnimini.evals.data import DataNotFound
from omnimini.evals.gsm8k import target_of
from omnimini.evals.humaneval import check_program, estimate_pass_at_k, find_code
from omnimini.evals.mgsm import LANG_TO_ANSWER_PREFIX, LANG_TO_INSTRUCTIONS, parse_answer, score_mgsm
from omnimini.evals.report import chart, compare_rows, markdown
from omnimini.evals.summary import summarize
from omnimini.evals.types import Example

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"
needs_data = pytest.mark.skipif(not EVALDATA.exists(), reason="../shared/evaldata not present")

# ---------------------------------------------------------------- MMLU

MMLU_CASES = [
    # (response, extracted) -- hand-checked against normalize_response + MULTILINGUAL_ANSWER_REGEXES
    ("Let me think.\nAnswer: B", "B"),
    ("The capital is Paris.\n\nANSWER: c", "c"),          # (?i) also makes [A-D] match "c": kept lower-case
    ("**Answer: D**", "D"),                                 # "**" removed first
    ("Answer: $\\boxed{C}$", "C"),                          # "$\boxed{" then "}$" removed
    ("Answer:A", "A"),                                      # no space needed
    ("Answer :\tB", "B"),                                   # \s* before the colon, [ \t]* after
    ("Answer:\nB", None),                                   # [ \t]* does not cross a newline
    ("The answer is B.", None),                             # no "Answer:" at all
    ("Answer: A\nOn reflection... Answer: C", "A"),         # re.search: the first match wins
    ("Answer: E", None),                                    # only A-D
    ("答案：D", "D"),                                        # Chinese, full-width colon
    ("答え: B", "B"),                                        # Japanese
    ("Antwort: A", "A"),                                    # German
    ("Réponse : C", "C"),                                   # French, space before the colon
    ("الإجابة: ب", "B"),                                    # Arabic letter beh -> " B" -> "B"
    ("উত্তর: অ", "A"),                                      # Bengali letter -> " A" -> "A"
    ("Answer: Ｃ", "C"),                                    # full-width C -> " C" -> "C"
    ("Answer: B) because", "B"),
    # six zero-width spaces after the colon: not [ \t], so only simple-evals' "Korean invisible
    # character" entry (the second regex) reads the letter
    ("Answer:\u200b\u200b\u200b\u200b\u200b\u200bC", "C"),
    ("Answer:\u200b\u200bC", None),                          # two are not six
]


@pytest.mark.parametrize("response,expected", MMLU_CASES)
def test_mmlu_extraction_matches_simple_evals(response, expected):
    assert extract_multichoice_answer(response) == expected


def test_mmlu_normalize_response_order():
    # "$\boxed{" goes before "{" and "$": the letter survives, the wrappers do not.
    assert normalize_response("**Answer:** $\\boxed{A}$") == "Answer: A"
    assert normalize_response("\\text{B}") == "B}"


def test_mmlu_prompt_and_scoring():
    ev = make_eval("mmlu")
    ex = Example(id="anatomy/0", data={"Question": "Q?", "A": "a", "B": "b", "C": "c", "D": "d",
                                       "Answer": "C", "Subject": "anatomy"})
    [msg] = ev.prompt(ex)
    assert msg == {"role": "user", "content": QUERY_TEMPLATE_MULTICHOICE.format(**ex.data)}
    assert msg["content"].startswith("Answer the following multiple choice question. The last line of your "
                                     "response should be of the following format: 'Answer: $LETTER'")
    assert msg["content"].endswith("Q?\n\nA) a\nB) b\nC) c\nD) d")
    right = ev.grade(ex, ["Reasoning...\nAnswer: C"])
    assert (right.score, right.extracted, right.metrics) == (1.0, "C", {"other": 1.0, "subject:anatomy": 1.0})
    assert ev.grade(ex, ["answer: c"]).score == 0.0                  # "c" != "C", as in simple-evals
    assert ev.grade(ex, [""]).score == 0.0


# ---------------------------------------------------------------- MGSM / GSM8K

MGSM_CASES = [
    # (lang, response, target, extracted, correct?)
    ("en", "16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\nAnswer: 18", "18", "18", True),
    ("en", "Answer: $1,234", "1234", "1234", True),                  # commas dropped before the search
    ("en", "Answer: 18.00", "18", "18.00", True),                    # trailing ".00" dropped when scoring
    ("en", "Answer: 18.5", "18", "18.5", False),
    ("en", "Answer: 12 apples, then 30 more", "30", "30", True),     # the last number after the prefix
    ("en", "Answer: 5\nWait, the Answer: 7", "7", "7", True),        # the last prefix
    ("en", "The result is 18.", "18", "", False),                    # no prefix: ""
    ("en", "answer: 18", "18", "", False),                           # the prefix is case-sensitive
    ("en", "Answer: 18.", "18", "18", True),                         # "18." -> rstrip(".")
    ("de", "Also 9 Eier.\nAntwort: 18", "18", "18", True),
    ("de", "Antwort: 1.234", "1234", "1.234", False),               # German thousands dot is not removed
    ("fr", "Réponse : 42", "42", "42", True),
    ("es", "Respuesta: 7 manzanas", "7", "7", True),
    ("ru", "Ответ: 25", "25", "25", True),
    ("sw", "Jibu: 3", "3", "3", True),
    ("ja", "答え: 18", "18", "18", True),
    ("zh", "答案：18", "18", "18", True),                            # full-width colon: split on "答案" only
    ("th", "คำตอบ: 100", "100", "100", True),
    ("te", "సమాధానం: 60", "60", "60", True),
    ("bn", "উত্তর: 18", "18", "18", True),
    ("bn", "উত্তর: ১৮", "18", "১৮", False),                          # \d matches Bengali digits; "১৮" != "18"
    ("en", "", "18", "", False),                                     # a refused request scores 0
]


@pytest.mark.parametrize("lang,response,target,extracted,correct", MGSM_CASES)
def test_mgsm_parse_and_score_match_simple_evals(lang, response, target, extracted, correct):
    got = parse_answer(response, LANG_TO_ANSWER_PREFIX[lang])
    assert got == extracted
    assert score_mgsm(target, got) is correct


def test_mgsm_prompts_are_simple_evals():
    assert len(LANG_TO_INSTRUCTIONS) == 11 and set(LANG_TO_INSTRUCTIONS) == set(LANG_TO_ANSWER_PREFIX)
    for lang, instruction in LANG_TO_INSTRUCTIONS.items():
        assert instruction.endswith("\n\n{input}")
        assert LANG_TO_ANSWER_PREFIX[lang] in instruction             # each prompt names its prefix
    assert LANG_TO_INSTRUCTIONS["en"].startswith("Solve this math problem. Give the reasoning steps")
    ev = make_eval("mgsm")
    ex = Example(id="ja/0", data={"inputs": "問題", "targets": "5", "lang": "ja"})
    assert ev.prompt(ex)[0]["content"] == LANG_TO_INSTRUCTIONS["ja"].format(input="問題")
    graded = ev.grade(ex, ["答え: 5"])
    assert graded.score == 1.0 and graded.metrics == {"ja": 1.0, "group_non_latin": 1.0}
    assert make_eval("mgsm").grade(Example("de/0", {"inputs": "x", "targets": "5", "lang": "de"}),
                                   ["Antwort: 4"]).metrics == {"de": 0.0, "group_latin": 0.0}


def test_gsm8k_targets_and_rule():
    assert target_of("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18") == "18"
    assert target_of("...\n#### 1,600") == "1600"
    ev = make_eval("gsm8k")
    ex = Example(id="0", data={"question": "How many?", "target": "1600"})
    assert ev.prompt(ex)[0]["content"] == LANG_TO_INSTRUCTIONS["en"].format(input="How many?")
    assert ev.grade(ex, ["so 1600 in all.\nAnswer: 1,600"]).score == 1.0
    assert ev.grade(ex, ["Answer: 160"]).score == 0.0


# ---------------------------------------------------------------- HumanEval

FENCED = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
UNFENCED_WITH_SIGNATURE = "def add(a, b):\n    return a + b\n"
BODY_ONLY = "    return a + b\n"


def test_humaneval_find_code_matches_simple_evals():
    # Fenced: the block's content, cut after the first ":\n    " (+2 keeps its 4-space indent).
    assert find_code(FENCED) == "    return a + b\n"
    # No fence: the whole response, cut the same way.
    assert find_code(UNFENCED_WITH_SIGNATURE) == "    return a + b\n"
    # A bare body has no ":\n    ": find() is -1, so simple-evals cuts the first character.
    assert find_code(BODY_ONLY) == "   return a + b\n"
    # Only ```python fences count; a ```py fence is left in (and the first character cut).
    assert find_code("```py\nx = 1\n```") == "``py\nx = 1\n```"
    # The first of several python blocks.
    assert find_code("```python\ndef f():\n    return 1\n```\n```python\ndef f():\n    return 2\n```") == \
        "    return 1\n"


def test_humaneval_check_program_is_human_evals():
    problem = {"prompt": "def add(a, b):\n", "test": "def check(c):\n    assert c(1, 2) == 3\n",
               "entry_point": "add", "task_id": "T/0"}
    assert check_program(problem, "    return a + b\n") == (
        "def add(a, b):\n    return a + b\n\ndef check(c):\n    assert c(1, 2) == 3\n\ncheck(add)")


def test_pass_at_k_unbiased_estimator():
    assert estimate_pass_at_k(5, 0, 1) == 0.0
    assert estimate_pass_at_k(5, 2, 1) == pytest.approx(0.4)           # c/n
    assert estimate_pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)   # 1 - C(3,2)/C(5,2)
    assert estimate_pass_at_k(5, 4, 2) == 1.0                          # n - c < k


# ---------------------------------------------------------------- summary and report


def _record(i, score, metrics, session=1):
    return {"id": str(i), "score": score, "metrics": metrics, "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            "seconds": 1.0, "finished_at": 100.0 + i, "session": session, "errors": []}


def test_summary_standard_error_and_categories():
    meta = {"eval": "mmlu", "model": "m", "target": "in-process", "limit": 4,
            "sessions": [{"started": 100.0, "finished": None}]}
    records = [_record(0, 1.0, {"stem": 1.0}), _record(1, 0.0, {"stem": 0.0}),
               _record(2, 1.0, {"other": 1.0}), _record(3, 1.0, {"other": 1.0})]
    s = summarize(meta, records, total_examples=4, available=14042)
    assert s["score"] == 0.75
    assert s["std"] == pytest.approx(0.4330127)                        # population std, as simple-evals
    assert s["stderr"] == pytest.approx(0.4330127 / 2)
    assert s["metrics"]["stem"]["mean"] == 0.5 and s["metrics"]["stem"]["n"] == 2
    assert s["metrics"]["other"]["mean"] == 1.0
    assert s["tokens"] == {"prompt": 40, "completion": 20, "completion_per_example": 5.0}
    assert s["time"]["wall_seconds"] == 3.0                           # killed session: ends at its last record
    full = summarize(meta, records, total_examples=4, available=4)
    assert "examples: 4 (the full set)" in markdown(full) and ">m</text>" in chart(full)
    md = markdown(s, "omnimini eval mmlu --limit 4")
    assert "examples: 4 (SUBSET of 14042)" in md and "75.0%" in md and "gpt-4o-mini-2024-07-18: 82.0" in md
    svg = chart(s)
    assert svg.startswith("<svg") and ">m (n=4)</text>" in svg and "gemini-1.5-flash" in svg and "claude-3-haiku" in svg
    header, rows = compare_rows([s])
    assert header[0] == "model" and "mmlu" in header
    assert rows[0][header.index("mmlu")] == "75.0 ± 21.7 (n=4)"
    published = {r[0]: r for r in rows}
    assert published["gpt-4o-mini-2024-07-18 (published)"][header.index("humaneval")] == "87.2"


# ---------------------------------------------------------------- data


@needs_data
def test_loaders_read_the_real_data_sets(tmp_path):
    mmlu = make_eval("mmlu").load(EVALDATA, tmp_path, None)
    assert len(mmlu) == 14042 and len({e.id for e in mmlu}) == 14042
    assert mmlu[0].id == "abstract_algebra/0" and mmlu[0].data["Answer"] == "B"
    mgsm = make_eval("mgsm").load(EVALDATA, tmp_path, None)
    assert len(mgsm) == 11 * 250
    assert make_eval("mgsm").load(EVALDATA, tmp_path, 3)[3].id == "de/0"   # first N of each language
    gsm = make_eval("gsm8k").load(EVALDATA, tmp_path, None)
    assert len(gsm) == 1319 and gsm[0].data["target"] == "18"
    assert len(make_eval("humaneval").load(None, tmp_path, None)) == 164
    # --limit: random.Random(0).sample, as simple-evals; deterministic across calls.
    a = [e.id for e in make_eval("mmlu").load(EVALDATA, tmp_path, 5)]
    assert a == [e.id for e in make_eval("mmlu").load(EVALDATA, tmp_path, 5)] and len(set(a)) == 5


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFound, match=r"mmlu: no data under .*openaipublic.*mmlu.csv"):
        make_eval("mmlu").load(tmp_path, tmp_path, None)
    with pytest.raises(DataNotFound, match=r"mgsm_bn.tsv.*google-research/url-nlp"):
        make_eval("mgsm").load(tmp_path, tmp_path, None)
    with pytest.raises(DataNotFound, match=r"grade-school-math"):
        make_eval("gsm8k").load(tmp_path, tmp_path, None)


def test_simple_evals_csv_layout_is_read(tmp_path):
    (tmp_path / "mmlu.csv").write_text(
        ",Question,A,B,C,D,Answer,Subject\n0,\"2+2, really?\",3,4,5,6,B,elementary_mathematics\n",
        encoding="utf-8")
    [ex] = make_eval("mmlu").load(tmp_path, tmp_path, None)
    assert ex.id == "elementary_mathematics/0" and ex.data["Question"] == "2+2, really?"
    assert json.loads(json.dumps(ex.data))["Answer"] == "B"


def test_online_path_downloads_once_into_the_cache(tmp_path, monkeypatch):
    """The canonical-URL path, served here by a real HTTP server on loopback."""
    import functools
    import http.server
    import threading

    import omnimini.evals.gsm8k as gsm8k_module

    site = tmp_path / "site"
    site.mkdir()
    (site / "test.jsonl").write_text('{"question": "1+1?", "answer": "2\\n#### 2"}\n', encoding="utf-8")
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setattr(gsm8k_module, "DATA_URL", f"{base}/test.jsonl")
        cache = tmp_path / "cache"
        for _ in range(2):
            [ex] = make_eval("gsm8k").load(None, cache, None)
            assert ex.data == {"question": "1+1?", "target": "2"}
        assert hits == ["/test.jsonl"]                                 # fetched once, then cached
        assert (cache / "gsm8k" / "test.jsonl").exists()
        monkeypatch.setattr(gsm8k_module, "DATA_URL", f"{base}/missing.jsonl")
        with pytest.raises(DataNotFound, match=r"could not download .*missing.jsonl.*--data-dir"):
            make_eval("gsm8k").load(None, tmp_path / "cache2", None)
        assert not list((tmp_path / "cache2").rglob("*.jsonl"))         # nothing half-written is kept
    finally:
        httpd.shutdown()
