"""`omnimini eval` with bad input: each mistake is a one-line error naming what is wrong (exit 2, or 1
for a run stopped by its target), never a traceback, and nothing is stored that a rerun would skip.
No model is loaded: every case is caught before a request is answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"
MGSM_LANGS = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")


def omnimini(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMNIMINI_DATA_DIR": str(tmp / "data"), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "omnimini", "eval", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def refused(r: subprocess.CompletedProcess, *needles: str, code: int = 2) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == code, out
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out


def test_malformed_mmlu_csv_names_file_and_line(tmp_path):
    d = tmp_path / "evaldata" / "mmlu" / "test"
    d.mkdir(parents=True)
    (d / "anatomy_test.csv").write_text('"What?",a,b,c,d,A\n"Short row",a,b\n')
    refused(omnimini("mmlu", "--data-dir", str(tmp_path / "evaldata"), tmp=tmp_path),
            "anatomy_test.csv:2", "expected 6 fields")
    (d / "anatomy_test.csv").write_text('"What?",a,b,c,d,E\n')         # not an answer letter
    refused(omnimini("mmlu", "--data-dir", str(tmp_path / "evaldata"), tmp=tmp_path), "anatomy_test.csv:1")


def test_mmlu_csv_without_its_header_is_named(tmp_path):
    d = tmp_path / "evaldata"
    d.mkdir()
    (d / "mmlu.csv").write_text("question,a,b,c,d,answer\nWhat?,1,2,3,4,A\n")
    refused(omnimini("mmlu", "--data-dir", str(d), tmp=tmp_path), "mmlu.csv", "no column Question")


def test_an_empty_data_set_is_an_error_not_a_null_summary(tmp_path):
    d = tmp_path / "evaldata" / "mmlu" / "test"
    d.mkdir(parents=True)                                            # the layout, with no subject files
    out = tmp_path / "run"
    refused(omnimini("mmlu", "--data-dir", str(tmp_path / "evaldata"), "--out", str(out), tmp=tmp_path),
            "holds no examples")
    assert not (out / "summary.json").exists()


def test_malformed_mgsm_and_gsm8k_lines_name_file_and_line(tmp_path):
    d = tmp_path / "evaldata"
    (d / "mgsm").mkdir(parents=True)
    for lang in MGSM_LANGS:
        (d / "mgsm" / f"mgsm_{lang}.tsv").write_text("Two plus two?\t4\n")
    (d / "mgsm" / "mgsm_sw.tsv").write_text("Two plus two?\t4\nno tab here\n")
    refused(omnimini("mgsm", "--data-dir", str(d), tmp=tmp_path), "mgsm_sw.tsv:2", "tab-separated")
    (d / "gsm8k").mkdir()
    (d / "gsm8k" / "test.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    refused(omnimini("gsm8k", "--data-dir", str(d), tmp=tmp_path), "test.jsonl:1", "####")
    refused(omnimini("mgsm", "--languages", "en,xx", "--data-dir", str(d), tmp=tmp_path),
            "unknown MGSM languages ['xx']")


def test_missing_or_bad_models_file_before_any_run_directory(tmp_path):
    out = tmp_path / "run"
    refused(omnimini("gsm8k", "--models-file", str(tmp_path / "nope.yaml"), "--out", str(out), tmp=tmp_path),
            "nope.yaml: no such file")
    bad = tmp_path / "models.json"
    bad.write_text('{"models": [{"id": "x", "colour": "red", "path": "x.gguf"}]}')
    refused(omnimini("gsm8k", "--models-file", str(bad), "--out", str(out), tmp=tmp_path),
            "unknown model keys ['colour']")
    assert not out.exists()


@pytest.mark.skipif(not EVALDATA.exists(), reason="../shared/evaldata not present")
def test_a_target_that_rejects_every_request_stores_nothing(tmp_path):
    """--max-tokens beyond the model's context: every request is a 400. The run stops instead of
    storing a 'finished' run of zeros that a rerun (with the setting fixed) would never retry."""
    out = tmp_path / "run"
    r = omnimini("gsm8k", "--limit", "3", "--max-tokens", "1000000", "--data-dir", str(EVALDATA),
                 "--out", str(out), tmp=tmp_path)
    refused(r, "rejected all of the first 3 requests", "maximum context length", code=1)
    assert not (out / "samples.jsonl").exists() or not (out / "samples.jsonl").read_text()


def test_report_and_compare_on_what_is_not_a_run(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(omnimini("report", str(empty), tmp=tmp_path), "no run.json")
    refused(omnimini("compare", str(tmp_path / "missing"), tmp=tmp_path), "no such file or directory")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    refused(omnimini("report", str(bad), tmp=tmp_path), "unreadable run.json")
    (bad / "run.json").write_text('{"eval": "mmlu", "model": "m", "examples": 3, "sessions": []}')
    refused(omnimini("report", str(bad), tmp=tmp_path), "no samples stored yet")
    (bad / "samples.jsonl").write_text('{"id": "x", "answer": 3}\n')
    refused(omnimini("report", str(bad), tmp=tmp_path), "is not what `omnimini eval` writes")
    (tmp_path / "summary.json").write_text("[1,")
    refused(omnimini("compare", str(tmp_path / "summary.json"), tmp=tmp_path), "not a summary.json")
    (tmp_path / "summary.json").write_text("[1, 2]")
    refused(omnimini("compare", str(tmp_path / "summary.json"), tmp=tmp_path), "not a summary.json of")
