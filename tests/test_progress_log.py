"""LoggedProgress: a long eval run in the background (nohup, CI, `| tee`) still reports its progress."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import BarColumn, TextColumn

from omnimini.commands.progress import LoggedProgress


def _run(console: Console, log_every: float) -> str:
    with LoggedProgress(TextColumn("{task.description}"), BarColumn(), console=console, log_every=log_every) as p:
        task = p.add_task("mgsm · m", total=10, completed=4, score="–")
        for i in range(6):
            p.update(task, advance=1, score=f"{10 * i:.1f}%")
    return console.file.getvalue()


def test_a_log_file_gets_plain_progress_lines():
    out = _run(Console(file=io.StringIO(), width=30), log_every=0)
    lines = [x for x in out.splitlines() if x.startswith("mgsm · m  ")]
    # every update but the last (the task is finished by then), counted from the resumed 4
    assert [x.split("  ")[1] for x in lines] == ["5/10", "6/10", "7/10", "8/10", "9/10"]
    assert "score 30.0%" in lines[3] and "/min" in lines[3] and "eta " in lines[3]
    assert all(" eta " in x for x in lines)             # one line each, not wrapped at the console's 30 columns


def test_lines_are_rate_limited():
    out = _run(Console(file=io.StringIO()), log_every=3600)
    assert not [x for x in out.splitlines() if x.startswith("mgsm · m  ")]


def test_a_terminal_gets_the_live_bar_only():
    out = _run(Console(file=io.StringIO(), force_terminal=True), log_every=0)
    assert "5/10" not in out and "/min" not in out


def test_a_stalled_run_still_logs():
    """Nothing completes for a while (a slow target): the heartbeat still writes the line."""
    import time
    console = Console(file=io.StringIO())
    with LoggedProgress(TextColumn("{task.description}"), console=console, log_every=0.05) as p:
        p.add_task("mmlu · m", total=10, completed=3, score="–")
        time.sleep(0.3)
    lines = [x for x in console.file.getvalue().splitlines() if x.startswith("mmlu · m  3/10")]
    assert len(lines) >= 2, console.file.getvalue()
