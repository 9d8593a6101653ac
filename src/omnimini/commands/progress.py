"""Progress of long jobs that also shows in a log file.

rich's live bar draws nothing until the job ends when its console is not a terminal (`nohup ... &`,
CI, `| tee`), so a run of several hours would say nothing for hours. There, `LoggedProgress` writes
one plain line per unfinished task every `LOG_EVERY_S` seconds instead, as tqdm does to a file.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from rich.progress import Progress, ProgressColumn, Task
from rich.text import Text

LOG_EVERY_S = 30.0   # a line per half minute: a stalled run shows within a minute, a 5-hour log stays readable
MIN_RATE_SECONDS = 5.0   # no rate before this much of the session has passed (two answers at once are no rate)


def _clock(seconds: float | None) -> str:
    return "–" if seconds is None else str(timedelta(seconds=int(seconds)))


def session_rate(task: Task) -> float | None:
    """Examples per second over this session: what was done since it started (the `resumed` field:
    done before) over its time. rich's own speed averages the last few updates, which reads
    thousands a minute when several answers of a batch land together."""
    elapsed = task.elapsed or 0.0
    done = task.completed - task.fields.get("resumed", 0)
    if elapsed < MIN_RATE_SECONDS or done <= 0:
        return None
    return done / elapsed


def session_eta(task: Task) -> float | None:
    rate = session_rate(task)
    return None if rate is None or task.total is None else max(0.0, task.total - task.completed) / rate


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rate = session_rate(task)
        return Text(f"{60 * rate:.1f}/min" if rate else "–/min", style="cyan")


class EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"eta {_clock(session_eta(task))}", style="cyan")


def progress_line(task: Task) -> str:
    """`mgsm · m  1713/2750  15.2/min  score 0.0%  elapsed 0:03:30  eta 1:08:12`: the bar's columns as text."""
    rate = session_rate(task)
    parts = [task.description, f"{int(task.completed)}/{int(task.total or 0)}",
             f"{60 * rate:.1f}/min" if rate else "–/min"]
    if "score" in task.fields:
        parts.append(f"score {task.fields['score']}")
    parts += [f"elapsed {_clock(task.elapsed)}", f"eta {_clock(session_eta(task))}"]
    return "  ".join(parts)


class LoggedProgress(Progress):
    """rich's `Progress`, plus a plain line per unfinished task every `log_every` seconds on a console
    that is not a terminal (where the live bar stays blank): on an update once the time has come, and
    from a heartbeat thread while nothing completes (a stalled run shows as one)."""

    def __init__(self, *columns, log_every: float = LOG_EVERY_S, **kwargs) -> None:
        super().__init__(*columns, **kwargs)
        self._log_every = log_every
        self._logged_at = time.monotonic()
        self._log_lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        if not self.console.is_terminal and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="progress-log", daemon=True)
            self._heartbeat.start()

    def stop(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        super().stop()

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        if not self.console.is_terminal:
            self._log_if_due()

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(max(0.01, self._log_every / 4)):
            self._log_if_due()

    def _log_if_due(self) -> None:
        with self._log_lock:
            now = time.monotonic()
            if now - self._logged_at < self._log_every:
                return
            self._logged_at = now
            for task in self.tasks:
                if task.started and not task.finished:
                    self.console.print(progress_line(task), markup=False, highlight=False, soft_wrap=True)
