"""`omnimini eval` end to end with the real embedded model: in-process and over HTTP against a live
`omnimini serve`, resuming a run killed half-way, and comparing runs.

Loads llama models: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_evals_run.py -x -q
Responses are capped at a few tokens (--max-tokens) to keep it fast; the point is the plumbing,
the storage and the resumption, not the 135M model's score.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnimini.evals.store import RunBusy, RunMismatch, RunStore

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"
needs_data = pytest.mark.skipif(not EVALDATA.exists(), reason="../shared/evaldata not present")


def omnimini(*args: str, tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMNIMINI_DATA_DIR": str(tmp / "data"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "omnimini", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@needs_data
def test_in_process_run_stores_every_sample_and_reports(tmp_path):
    out = tmp_path / "mmlu"
    r = omnimini("eval", "mmlu", "--limit", "2", "--max-tokens", "24", "--threads", "2",
                 "--data-dir", str(EVALDATA), "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    records = lines(out / "samples.jsonl")
    assert len(records) == 2 and len({x["id"] for x in records}) == 2
    for rec in records:
        assert rec["prompt"][0]["content"].startswith("Answer the following multiple choice question.")
        assert isinstance(rec["responses"][0], str) and rec["responses"][0]
        assert rec["score"] in (0.0, 1.0) and rec["correct"] in "ABCD"
        assert 0 < rec["usage"]["completion_tokens"] <= 24
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 2 and summary["limit"] == 2 and summary["eval"] == "mmlu"
    assert summary["available"] == 14042
    assert summary["score"] == sum(x["score"] for x in records) / 2
    assert summary["tokens"]["completion"] == sum(x["usage"]["completion_tokens"] for x in records)
    assert summary["sampler"]["system_message"] == "You are a helpful assistant."
    assert summary["sampler"]["temperature"] == 0.5
    report = (out / "report.md").read_text()
    assert "examples: 2 (SUBSET of 14042)" in report and "omnimini eval mmlu --limit 2" in report
    assert (out / "chart.svg").read_text().startswith("<svg")


def test_humaneval_in_process_runs_code_in_the_sandbox(tmp_path):
    out = tmp_path / "he"
    r = omnimini("eval", "humaneval", "--limit", "2", "--max-tokens", "96", "--threads", "2",
                 "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    records = lines(out / "samples.jsonl")
    assert len(records) == 2
    for rec in records:
        [detail] = rec["details"]
        assert detail["result"] == "passed" or detail["result"].startswith(("failed", "timed out", "killed"))
        assert rec["score"] == float(detail["passed"]) == rec["metrics"]["pass@1"]


def test_a_seeded_run_draws_distinct_samples(tmp_path):
    """--seed with several completions per problem: each completion gets its own seed, or pass@k
    would be scored on k copies of one completion."""
    out = tmp_path / "he-seeded"
    r = omnimini("eval", "humaneval", "--limit", "1", "--samples", "3", "--seed", "11", "--temperature", "1.0",
                 "--max-tokens", "16", "--threads", "2", "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    [rec] = lines(out / "samples.jsonl")
    assert len(rec["responses"]) == 3 and len(set(rec["responses"])) == 3, rec["responses"]


@needs_data
def test_resume_after_kill_evaluates_nothing_twice(tmp_path):
    out = tmp_path / "gsm"
    args = [sys.executable, "-m", "omnimini", "eval", "gsm8k", "--limit", "6", "--max-tokens", "12",
            "--threads", "2", "--data-dir", str(EVALDATA), "--out", str(out)]
    env = {**os.environ, "OMNIMINI_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if samples.exists() and len(samples.read_text().splitlines()) >= 3:
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)                     # no chance to clean up
    proc.wait()
    before = samples.read_text().splitlines()
    assert 3 <= len(before) < 6

    # A report on the stopped run scores what is stored and changes no file, not even a torn last line
    # (beside a running writer, that line is being written).
    with open(samples, "a") as f:
        f.write('{"id": "torn')
    stored = samples.read_bytes()
    r = omnimini("eval", "report", str(out), "--write", tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"in progress: {len(before)} of 6 done" in r.stdout
    assert samples.read_bytes() == stored
    assert f"IN PROGRESS: {len(before)} of 6 done" in (out / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text())["n"] == len(before)
    cmp = omnimini("eval", "compare", str(out), tmp=tmp_path)
    assert cmp.returncode == 0 and f"(n={len(before)})" in cmp.stdout, cmp.stdout + cmp.stderr

    r = omnimini("eval", "gsm8k", "--limit", "6", "--max-tokens", "12", "--threads", "2",
                 "--data-dir", str(EVALDATA), "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(before)} of 6 already evaluated, {6 - len(before)} to go" in r.stdout
    after = samples.read_text().splitlines()
    assert after[:len(before)] == before                   # stored samples untouched
    records = [json.loads(x) for x in after]
    assert len(records) == 6 and len({x["id"] for x in records}) == 6
    assert [x["session"] for x in records] == [1] * len(before) + [2] * (6 - len(before))
    meta = json.loads((out / "run.json").read_text())
    assert [s["evaluated"] for s in meta["sessions"]][1] == 6 - len(before)
    assert meta["sessions"][1]["to_do"] == 6 - len(before)

    # A third run finds everything done and asks the model nothing.
    r = omnimini("eval", "gsm8k", "--limit", "6", "--max-tokens", "12", "--data-dir", str(EVALDATA),
                 "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0 and "6 of 6 already evaluated, 0 to go" in r.stdout
    assert samples.read_text().splitlines() == after
    # The same directory with other settings is refused, not mixed.
    r = omnimini("eval", "gsm8k", "--limit", "6", "--max-tokens", "99", "--data-dir", str(EVALDATA),
                 "--out", str(out), tmp=tmp_path)
    assert r.returncode == 2 and "holds another run" in r.stdout


@needs_data
def test_other_settings_get_their_own_default_directory(tmp_path):
    """Without --out, a run with other settings (here --max-tokens) starts its own directory instead of
    being refused by the first one's."""
    for cap in ("4", "5"):
        r = omnimini("eval", "gsm8k", "--limit", "1", "--max-tokens", cap, "--threads", "2",
                     "--data-dir", str(EVALDATA), tmp=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
    runs = sorted(p.name for p in (tmp_path / "data" / "evals").iterdir())
    assert len(runs) == 2 and all(name.startswith("gsm8k-omnimini-mini-n1") for name in runs), runs


def test_store_cuts_a_torn_last_line(tmp_path):
    store = RunStore(tmp_path / "run")
    identity = {"eval": "gsm8k", "model": "m", "target": "t", "limit": 2, "samples_per_example": 1,
                "sampler": {}, "options": {}}
    store.open(identity)
    store.append({"id": "a", "score": 1.0})
    with open(store.samples_path, "a") as f:
        f.write('{"id": "b", "sco')                          # killed mid-write
    assert list(store.records()) == ["a"]
    store.append({"id": "b", "score": 0.0})
    assert list(store.records()) == ["a", "b"]
    # While a run holds the directory, a second one is refused instead of interleaving its lines.
    with pytest.raises(RunBusy):
        RunStore(tmp_path / "run").open(identity)
    store.close()
    with pytest.raises(RunMismatch) as refused:
        RunStore(tmp_path / "run").open({"eval": "mmlu"})
    assert not isinstance(refused.value, RunBusy)


def test_store_skips_a_damaged_line_and_keeps_the_rest(tmp_path):
    store = RunStore(tmp_path / "run")
    store.open({"eval": "gsm8k"})
    store.append({"id": "a", "score": 1.0})
    with open(store.samples_path, "ab") as f:
        f.write(b'{"id": "b", "sc\xff\n')                  # a damaged line with its newline
    store.append({"id": "c", "score": 0.0})
    assert list(store.records()) == ["a", "c"]                # "c" is kept; "b" will be asked again
    assert list(store.records()) == ["a", "c"]


@needs_data
def test_http_endpoint_with_concurrency_and_compare(server, tmp_path):
    out = tmp_path / "mgsm-http"
    r = omnimini("eval", "mgsm", "--base-url", server.base_url, "--api-key", "x", "--languages", "en,de",
                 "--limit", "2", "--concurrency", "2", "--max-tokens", "16", "--data-dir", str(EVALDATA),
                 "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    records = lines(out / "samples.jsonl")
    assert sorted(x["id"] for x in records) == ["de/0", "de/1", "en/0", "en/1"]
    assert all(x["usage"]["prompt_tokens"] > 0 for x in records)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["metrics"]) == {"de", "en", "group_latin"} and summary["target"] == server.base_url
    # An unknown model is a clear stop, not a run of zeros.
    bad = omnimini("eval", "mgsm", "--base-url", server.base_url, "--model", "no-such-model", "--languages", "en",
                   "--limit", "1", "--data-dir", str(EVALDATA), "--out", str(tmp_path / "bad"), tmp=tmp_path)
    assert bad.returncode == 1 and "NotFoundError" in bad.stdout
    cmp = omnimini("eval", "compare", str(out), "--out", str(tmp_path / "cmp.md"), tmp=tmp_path)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    table = (tmp_path / "cmp.md").read_text()
    assert "gpt-4o-mini-2024-07-18 (published)" in table and "(n=4)" in table
    assert "claude-3-haiku (published)" in table and "gemini-1.5-flash (published)" in table
