"""A run on disk: run.json (what was asked, and each session) and samples.jsonl (one line per graded
example, appended and fsynced as it completes). Reopening the directory resumes the run: examples
already in samples.jsonl are not asked again.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
CHART_FILE = "chart.svg"
# What must match for a directory to be resumed: a different value means a different experiment.
IDENTITY_KEYS = ("eval", "model", "target", "limit", "samples_per_example", "sampler", "options")


class RunMismatch(Exception):
    """The output directory holds a different run."""


class RunBusy(RunMismatch):
    """Another process is running in the output directory (two writers would interleave lines)."""


class RunStore:
    def __init__(self, out_dir: Path):
        self.dir = out_dir
        self.run_path = out_dir / RUN_FILE
        self.samples_path = out_dir / SAMPLES_FILE
        self.meta: dict[str, Any] = {}

    def open(self, identity: dict[str, Any]) -> dict[str, dict]:
        """Create the run or check that the existing one is the same; return the records done so far.

        The directory stays locked (flock on the directory itself, released when this process ends)
        so that the same command started twice cannot append to one samples.jsonl at once.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir, os.O_RDONLY)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise RunBusy(f"{self.dir} is in use by another `omnimini eval` run; wait for it or stop it") from None
        if self.run_path.exists():
            self.meta = json.loads(self.run_path.read_text())
            theirs = {k: self.meta.get(k) for k in IDENTITY_KEYS}
            ours = json.loads(json.dumps({k: identity.get(k) for k in IDENTITY_KEYS}))
            if theirs != ours:
                diff = {k: (theirs[k], ours[k]) for k in IDENTITY_KEYS if theirs[k] != ours[k]}
                raise RunMismatch(f"{self.dir} holds another run (differs in {diff}); "
                                  "choose another --out or delete it")
        else:
            self.meta = {**identity, "created": time.time(), "sessions": []}
            self._write_meta()
        return self.records()

    def close(self) -> None:
        """Release the directory (a run in this process may then open it again)."""
        fd, self._lock_fd = getattr(self, "_lock_fd", None), None
        if fd is not None:
            os.close(fd)            # closing the descriptor releases its flock

    def __del__(self) -> None:
        self.close()

    def records(self, repair: bool = True) -> dict[str, dict]:
        """The completed records by id. A torn last line (killed mid-write) is cut off the file (unless
        `repair` is off: a reader beside a running writer leaves its half-written line alone); a
        damaged line further up is skipped (its example is asked again), never a reason to drop the
        good lines after it."""
        done: dict[str, dict] = {}
        if not self.samples_path.exists():
            return done
        good_end = size = 0
        with open(self.samples_path, "rb") as f:
            for line in f:
                size += len(line)
                try:
                    rec = json.loads(line) if line.endswith(b"\n") else None
                except (json.JSONDecodeError, UnicodeDecodeError):
                    rec = None
                if isinstance(rec, dict) and "id" in rec:
                    done[rec["id"]] = rec
                    good_end = size
                elif line.endswith(b"\n"):
                    good_end = size         # keep the damaged line where it is; only a torn tail goes
        if repair and good_end != size:
            with open(self.samples_path, "r+b") as f:
                f.truncate(good_end)
        return done

    def start_session(self, to_do: int) -> dict[str, Any]:
        session = {"started": time.time(), "finished": None, "to_do": to_do, "evaluated": 0}
        self.meta["sessions"].append(session)
        self._write_meta()
        return session

    def end_session(self, session: dict[str, Any], evaluated: int) -> None:
        session["finished"] = time.time()
        session["evaluated"] = evaluated
        self._write_meta()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.samples_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def _write_meta(self) -> None:
        tmp = self.run_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, ensure_ascii=False))
        os.replace(tmp, self.run_path)


def read_run(out_dir: Path) -> tuple[dict[str, Any], dict[str, dict]]:
    """A run's metadata and records, read without the lock and without changing a file: for a report
    on a run that may still be going."""
    store = RunStore(out_dir)
    if not store.run_path.is_file():
        raise FileNotFoundError(f"{out_dir}: no {RUN_FILE} (is it a run directory of `omnimini eval`?)")
    store.meta = json.loads(store.run_path.read_text())
    return store.meta, store.records(repair=False)
