"""`omnimini eval` against endpoints that misbehave: a fake OpenAI-compatible server on loopback (the
only way to reach these fault paths; real servers are covered by test_evals_run.py). Each case ends
as a clear one-line stop or a finished run, never a traceback, a hang or a silently wrong score.
No model is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata"
pytestmark = pytest.mark.skipif(not EVALDATA.exists(), reason="../shared/evaldata not present")


def completion(content) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()


class Fake(BaseHTTPRequestHandler):
    """The first path segment says how to misbehave: http://host/MODE/v1/chat/completions."""
    counter = 0
    lock = threading.Lock()
    reject_message = "no such setting"

    def log_message(self, *args):
        pass

    def send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.path.split("/")[1]
        prompt = body["messages"][-1]["content"]
        with Fake.lock:
            Fake.counter += 1
            n = Fake.counter
        if mode == "ok":
            self.send(200, completion("Answer: 42"))
        elif mode == "rejectslow":       # every other prompt is too long; answers take a while
            if zlib.crc32(prompt.encode()) % 2 == 0:     # the same split on every run
                self.send(400, json.dumps({"error": {"message": "context length exceeded",
                                                     "type": "invalid_request_error"}}).encode())
            else:
                time.sleep(0.5)
                self.send(200, completion("Answer: 42"))
        elif mode == "reject":
            self.send(400, json.dumps({"error": {"message": Fake.reject_message, "type": "x"}}).encode())
        elif mode == "surrogate":
            self.send(200, completion("Answer: 42 \ud83d").replace(b"\\\\ud83d", b"\\ud83d"))
        elif mode == "null":
            self.send(200, completion(None))
        elif mode == "html":
            self.send(200, b"<html><body>Welcome</body></html>", "text/html")
        elif mode == "hang":
            time.sleep(30)
        else:
            self.send(404, b"{}")
        del n


@pytest.fixture(scope="module")
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def omnimini(*args: str, tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMNIMINI_DATA_DIR": str(tmp / "data"), "COLUMNS": "250"}
    r = subprocess.run([sys.executable, "-m", "omnimini", "eval", *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def gsm8k(fake: str, mode: str, out: Path, *extra: str, tmp: Path, limit: int = 4) -> subprocess.CompletedProcess:
    return omnimini("gsm8k", "--base-url", f"{fake}/{mode}/v1", "--api-key", "k", "--limit", str(limit),
                    "--data-dir", str(EVALDATA), "--out", str(out), *extra, tmp=tmp)


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_quick_rejections_do_not_stop_a_target_that_answers_the_rest(fake, tmp_path):
    out = tmp_path / "some"
    r = gsm8k(fake, "rejectslow", out, "--concurrency", "8", tmp=tmp_path, limit=16)
    assert r.returncode == 0, r.stdout
    stored = records(out)
    assert len(stored) == 16
    rejected = [x for x in stored if x["errors"]]
    assert 0 < len(rejected) < 16 and all(x["score"] == 0 for x in rejected)
    # A resumed run whose only remaining examples are rejected ones finishes: its stored answers
    # show the target accepts requests.
    kept = [x for x in stored if not x["errors"]]
    (out / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in kept))
    r = gsm8k(fake, "rejectslow", out, "--concurrency", "8", tmp=tmp_path, limit=16)
    assert r.returncode == 0, r.stdout
    assert len(records(out)) == 16


def test_a_target_that_rejects_everything_stops_without_promising_a_resume(fake, tmp_path):
    r = gsm8k(fake, "reject", tmp_path / "rej", tmp=tmp_path)
    assert r.returncode == 1 and "rejected all of the first 4 requests" in r.stdout
    assert "rerun the same command to resume" not in r.stdout and "refused the same way" in r.stdout
    assert not (tmp_path / "rej" / "samples.jsonl").exists()


def test_a_run_resumed_on_other_data_is_refused(fake, tmp_path):
    other = tmp_path / "evaldata" / "gsm8k"
    other.mkdir(parents=True)
    lines = (EVALDATA / "gsm8k" / "test.jsonl").read_text().splitlines()
    changed = [json.dumps({**json.loads(x), "answer": "#### 42"}) for x in lines]
    (other / "test.jsonl").write_text("\n".join(changed) + "\n")
    out = tmp_path / "mixed"
    r = omnimini("gsm8k", "--base-url", f"{fake}/ok/v1", "--limit", "3", "--data-dir", str(tmp_path / "evaldata"),
                 "--out", str(out), tmp=tmp_path)
    assert r.returncode == 0 and json.loads((out / "summary.json").read_text())["score"] == 1.0
    r = gsm8k(fake, "ok", out, tmp=tmp_path, limit=3)
    assert r.returncode == 2 and "holds a run on other data" in r.stdout, r.stdout


def test_half_an_emoji_is_stored_and_read_back(fake, tmp_path):
    out = tmp_path / "sur"
    r = gsm8k(fake, "surrogate", out, tmp=tmp_path)
    assert r.returncode == 0, r.stdout
    assert all(x["responses"][0] == "Answer: 42 \ud83d" for x in records(out))


def test_answers_without_text_are_counted_and_told(fake, tmp_path):
    out = tmp_path / "null"
    r = gsm8k(fake, "null", out, tmp=tmp_path)
    assert r.returncode == 0 and "4 of 4 responses had no text" in r.stdout, r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["empty_responses"] == 4 and summary["errors"] == 0
    assert "empty responses (no text, not refused): 4" in (out / "report.md").read_text()


def test_a_page_instead_of_a_completion_is_named(fake, tmp_path):
    r = gsm8k(fake, "html", tmp_path / "html", tmp=tmp_path)
    assert r.returncode == 1 and "did not answer with a chat completion" in r.stdout, r.stdout


def test_a_target_that_never_answers_stops_at_the_timeout(fake, tmp_path):
    start = time.monotonic()
    r = gsm8k(fake, "hang", tmp_path / "hang", "--timeout", "2", tmp=tmp_path, limit=1)
    assert r.returncode == 1 and "no answer within 2 s" in r.stdout, r.stdout
    assert time.monotonic() - start < 25


def test_compare_keeps_two_runs_of_one_model_apart(fake, tmp_path):
    for name, limit in (("a", 2), ("b", 3)):
        assert gsm8k(fake, "ok", tmp_path / name, tmp=tmp_path, limit=limit).returncode == 0
    r = omnimini("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp.md"), tmp=tmp_path)
    assert r.returncode == 0, r.stdout
    table = (tmp_path / "cmp.md").read_text()
    assert "[a]" in table and "[b]" in table and "(n=2)" in table and "(n=3)" in table


def test_options_no_run_could_use_are_refused_before_anything_starts(fake, tmp_path):
    for args, needle in ((["--base-url", ""], "not an http:// or https:// URL"),
                         (["--base-url", "ftp://127.0.0.1/v1"], "not an http:// or https:// URL"),
                         (["--base-url", f"{fake}/ok/v1", "--temperature", "-1"], "between 0 and 2"),
                         (["--base-url", f"{fake}/ok/v1", "--temperature", "nan"], "between 0 and 2")):
        r = omnimini("gsm8k", *args, "--limit", "1", "--data-dir", str(EVALDATA), "--out", str(tmp_path / "o"),
                     tmp=tmp_path)
        assert r.returncode == 2 and needle in r.stdout, (args, r.stdout)
        assert not (tmp_path / "o").exists()
    r = omnimini("mgsm", "--base-url", f"{fake}/ok/v1", "--languages", ",", "--data-dir", str(EVALDATA), tmp=tmp_path)
    assert r.returncode == 2 and "names no language" in r.stdout
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = gsm8k(fake, "ok", afile, tmp=tmp_path)
    assert r.returncode == 2 and f"--out {afile}" in r.stdout, r.stdout


def test_markup_in_a_targets_message_is_printed_as_it_is(fake, tmp_path):
    """Error text comes from the target: brackets in it ("[/INST]") are text, not console markup."""
    Fake.reject_message = "bad template [/INST] [error]"
    try:
        r = gsm8k(fake, "reject", tmp_path / "m", tmp=tmp_path, limit=1)
    finally:
        Fake.reject_message = "no such setting"
    assert r.returncode == 1 and "bad template [/INST] [error]" in r.stdout, r.stdout


def test_report_write_keeps_the_command_of_an_older_report(fake, tmp_path):
    out = tmp_path / "old"
    assert gsm8k(fake, "ok", out, tmp=tmp_path, limit=2).returncode == 0
    meta = json.loads((out / "run.json").read_text())
    for s in meta["sessions"]:
        s.pop("command")                 # as a run made before sessions stored their command
    (out / "run.json").write_text(json.dumps(meta))
    before = [x for x in (out / "report.md").read_text().splitlines() if x.startswith("- command:")]
    assert before and "--limit 2" in before[0]
    r = omnimini("report", str(out), "--write", tmp=tmp_path)
    assert r.returncode == 0
    assert [x for x in (out / "report.md").read_text().splitlines() if x.startswith("- command:")] == before
    (out / "run.json").unlink()          # a run copied without its run.json: its summary.json is read
    r = omnimini("report", str(out), "--write", tmp=tmp_path)
    assert r.returncode == 0, r.stdout
