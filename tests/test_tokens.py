"""Tokens: tokenizers by name (offline from a local directory), the launch table, corpora, the report.

The GGUF cases load the embedded model's vocabulary only (llama.cpp vocab_only: no weights, no
context, no threads); run this file under the llama lock all the same, as the brief asks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from omnimini.models.catalog import Catalog, embedded_specs
from omnimini.models.weights import embedded_gguf_path
from omnimini.tokens import TokenizerUnavailable, UnknownTokenizer, load_tokenizer
from omnimini.tokens.compare import RATIO_TOLERANCE, count_corpus, launch_table, tekken_claims, usd
from omnimini.tokens.corpora import MGSM_LANGUAGES, humaneval_code, launch_sentences, mgsm
from omnimini.tokens.report import measure, write_report

SHARED = Path(__file__).resolve().parents[2] / "shared"
TOKENIZER_DIR = SHARED / "tokenizers"
MGSM_DIR = SHARED / "evaldata" / "mgsm"
LAUNCH_ENGLISH = "Hello, my name is GPT-4o. I'm a new type of language model, it's nice to meet you!"
# A proxy nobody listens on: any download attempt fails at once instead of reaching the network.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": ""}


@pytest.fixture(scope="module")
def openai_tokenizers():
    return [load_tokenizer(n, tiktoken_dir=TOKENIZER_DIR) for n in ("cl100k_base", "o200k_base")]


def _sentence(language: str):
    return next(s for s in launch_sentences() if s.language == language)


# ---------------------------------------------------------------------------- exact counts

def test_english_and_chinese_launch_counts_equal_the_published_ones(openai_tokenizers):
    cl, o = openai_tokenizers
    assert _sentence("English").text == LAUNCH_ENGLISH
    assert (cl.count(LAUNCH_ENGLISH), o.count(LAUNCH_ENGLISH)) == (27, 24)
    zh = _sentence("Chinese")
    assert (cl.count(zh.text), o.count(zh.text)) == (zh.published["cl100k_base"], zh.published["o200k_base"]) == (34, 24)


def test_every_language_ratio_is_within_tolerance_of_the_published_one(openai_tokenizers):
    rows = launch_table(launch_sentences(), openai_tokenizers)
    assert len(rows) == 20 and len({r.sentence.code for r in rows}) == 20
    for r in rows:
        assert abs(r.ratio_deviation) <= RATIO_TOLERANCE, (r.sentence.language, r.ratio, r.published_ratio)
    # Every count that is not exact carries a note saying why (the report prints it).
    for r in rows:
        assert r.exact or r.sentence.note, r.sentence.language


def test_usd_keeps_three_significant_digits():
    assert [usd(x) for x in (3.6e-6, 0.01834, 0.441, 6.7, 1234.0, 0.0)] == \
        ["$0.00000360", "$0.0183", "$0.441", "$6.70", "$1,234.00", "$0.00"]


def test_special_token_text_is_counted_as_text(openai_tokenizers):
    cl, o = openai_tokenizers
    assert o.count("<|endoftext|>") > 1 and cl.count("<|endoftext|>") > 1


# ---------------------------------------------------------------------------- where files come from

def test_offline_loading_from_a_local_directory_with_no_network(tmp_path):
    """A fresh process, no tiktoken cache, every download blocked: the local directory is enough."""
    code = ("import sys; from pathlib import Path; from omnimini.tokens import load_tokenizer\n"
            f"t = load_tokenizer('o200k_base', tiktoken_dir=Path({str(TOKENIZER_DIR)!r}))\n"
            f"print(t.vocab_size, t.count({LAUNCH_ENGLISH!r}))")
    env = {**os.environ, **NO_NETWORK, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["200019", "24"]


def test_the_directory_can_come_from_the_environment(tmp_path, monkeypatch):
    shutil.copy(TOKENIZER_DIR / "cl100k_base.tiktoken", tmp_path / "cl100k_base.tiktoken")
    monkeypatch.setenv("OMNIMINI_TOKENIZER_DIR", str(tmp_path))
    assert load_tokenizer("cl100k_base").count(LAUNCH_ENGLISH) == 27


def test_unavailable_tiktoken_file_names_where_to_get_it(tmp_path):
    with pytest.raises(TokenizerUnavailable) as e:
        load_tokenizer("o200k_base", tiktoken_dir=tmp_path)
    msg = str(e.value)
    assert "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken" in msg
    assert str(tmp_path) in msg


def test_a_wrong_rank_file_is_refused(tmp_path):
    (tmp_path / "o200k_base.tiktoken").write_bytes((TOKENIZER_DIR / "cl100k_base.tiktoken").read_bytes())
    with pytest.raises(TokenizerUnavailable, match="sha256"):
        load_tokenizer("o200k_base", tiktoken_dir=tmp_path)


def test_no_directory_and_no_network_is_a_clear_error(tmp_path):
    code = ("from omnimini.tokens import load_tokenizer, TokenizerUnavailable\n"
            "try:\n    load_tokenizer('cl100k_base')\nexcept TokenizerUnavailable as e:\n    print(e)\n")
    env = {**os.environ, **NO_NETWORK, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache")}
    env.pop("OMNIMINI_TOKENIZER_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken" in out.stdout
    assert "--tokenizer-dir" in out.stdout and "OMNIMINI_TOKENIZER_DIR" in out.stdout


def test_uninstalled_package_names_the_package(monkeypatch):
    # The fault path (mistral-common missing) cannot be reached in this environment otherwise.
    monkeypatch.setattr("omnimini.tokens.tokenizers.MISTRAL_DIST", "mistral-common-not-installed")
    with pytest.raises(TokenizerUnavailable, match="pip install --no-deps mistral-common-not-installed"):
        load_tokenizer("tekken")


def test_unknown_name_lists_the_known_ones():
    catalog = Catalog(embedded_specs())
    with pytest.raises(UnknownTokenizer) as e:
        load_tokenizer("gpt-5-tokenizer", catalog=catalog)
    for name in ("o200k_base", "tekken", "mistral-sp", "omnimini-mini", "gguf:PATH"):
        assert name in str(e.value)
    assert "omnimini-embed" not in str(e.value)        # an embedding model has no GGUF vocabulary


def test_mistral_tokenizers_ship_in_mistral_common():
    tekken, sp = load_tokenizer("tekken"), load_tokenizer("mistral-sp")
    assert (tekken.vocab_size, sp.vocab_size) == (131072, 32768)
    # Tekken is the larger, byte-level vocabulary: fewer tokens on non-Latin scripts.
    korean = _sentence("Korean").text
    assert tekken.count(korean) < sp.count(korean)


def test_gguf_vocabulary_by_catalog_name_and_by_path(tmp_path):
    catalog = Catalog(embedded_specs())
    by_name = load_tokenizer("omnimini-mini", catalog=catalog, data_dir=tmp_path)
    by_path = load_tokenizer(f"gguf:{embedded_gguf_path()}")
    assert by_name.vocab_size == by_path.vocab_size == 49152        # SmolLM2's vocabulary
    assert "smollm2" in by_name.label
    for s in launch_sentences():
        assert by_name.encode(s.text) == by_path.encode(s.text)
    with pytest.raises(TokenizerUnavailable, match="no GGUF file"):
        load_tokenizer(f"gguf:{tmp_path / 'missing.gguf'}")


# ---------------------------------------------------------------------------- corpora and claims

def test_mgsm_is_parallel_and_humaneval_is_complete():
    lengths = {lang: len(mgsm(lang, MGSM_DIR)) for lang in MGSM_LANGUAGES}
    assert lengths == {lang: 250 for lang in MGSM_LANGUAGES}
    code = humaneval_code()
    assert len(code) == 164 and all("def " in c and "return" in c for c in code)


def test_tekken_beats_sentencepiece_where_mistral_said_it_does():
    tokenizers = [load_tokenizer("tekken"), load_tokenizer("mistral-sp")]
    corpora = [count_corpus(lang, lang, mgsm(lang, MGSM_DIR), tokenizers) for lang in ("zh", "fr", "de", "es", "ru")]
    corpora.append(count_corpus("code", "code", humaneval_code(), tokenizers))
    checks = {c.corpus: c for c in tekken_claims(corpora, launch_table(launch_sentences(), tokenizers))}
    assert set(checks) == {"code", "zh", "it", "fr", "de", "es", "ru", "ko", "ar"}
    assert checks["zh"].evidence.startswith("zh:") and checks["ko"].evidence.startswith("the launch sentence")
    for c in checks.values():
        assert c.measured > 1.1, c               # fewer Tekken tokens everywhere a claim was made
        assert c.verdict in ("holds", "exceeds the claim", "falls short")


def test_report_has_the_three_sections_and_a_valid_chart(tmp_path):
    mini = [s for s in embedded_specs() if s.kind == "chat"]
    m = measure(Catalog(mini), tiktoken_dir=TOKENIZER_DIR, mgsm_dir=MGSM_DIR, data_dir=tmp_path)
    names = [t.name for t in m.tokenizers]
    assert names[:5] == ["cl100k_base", "o200k_base", "tekken", "mistral-sp", "omnimini-mini"]
    path = write_report(m, tmp_path / "docs")
    text = path.read_text()
    for heading in ("## 1. GPT-4o's launch sentence", "## 2. Compression", "### Mistral's claims", "## 3. What a text costs"):
        assert heading in text
    assert "| English | 27 | 24 | 1.12x | 27 | 24 |" in text
    assert "| Chinese | 34 | 24 | 1.42x | 34 | 24 |" in text
    # The cost table prices each corpus on the catalog model and on GPT-4o mini / GPT-4.
    assert "omnimini-mini (`omnimini-mini`, $0.15/$0.6)" in text and "gpt-4 (`cl100k_base`, $30/$60)" in text
    svg = ET.parse(tmp_path / "docs" / "tokens-compression.svg").getroot()
    assert svg.tag.endswith("svg")
    assert b"MGSM Telugu" in (tmp_path / "docs" / "tokens-compression.svg").read_bytes()


# ---------------------------------------------------------------------------- CLI

def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "omnimini", "tokens", *args], input=stdin,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **NO_NETWORK})


def test_cli_count_counts_and_prices_a_text(tmp_path):
    f = tmp_path / "zh.txt"
    f.write_text(_sentence("Chinese").text, encoding="utf-8")
    out = _cli("count", "--file", str(f), "-t", "o200k_base", "-t", "cl100k_base", "-t", "tekken",
               "--tokenizer-dir", str(TOKENIZER_DIR))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("o200k_base" in ln and " 24 " in ln for ln in lines)
    assert any("cl100k_base" in ln and " 34 " in ln for ln in lines)
    # GPT-4o mini at $0.15 / $0.60 per 1M tokens: 24 tokens cost $0.0000036 in, $0.0000144 out.
    assert any("gpt-4o-mini" in ln and "$0.00000360" in ln and "$0.0000144" in ln for ln in lines)


def test_cli_count_reads_stdin_and_fails_clearly_on_a_missing_tokenizer(tmp_path):
    out = _cli("count", "-", "-t", "o200k_base", "--tokenizer-dir", str(TOKENIZER_DIR), stdin=LAUNCH_ENGLISH)
    assert out.returncode == 0 and " 24 " in out.stdout, out.stderr
    out = _cli("count", "hello", "-t", "o200k_base", "--tokenizer-dir", str(tmp_path))
    assert out.returncode == 1
    assert "openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken" in out.stderr.replace("\n", "")
