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
# ...and the data: a fingerprint of the examples asked (ids and contents), so that a run resumed
# with another copy of the data set (mmlu.csv online, the per-subject files offline, in another
# order) does not pair stored answers with other questions. Runs made before it was recorded have
# none and take the first one they are resumed with.
DATA_KEY = "data"


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
            try:
                self.meta = json.loads(self.run_path.read_text())
                if not isinstance(self.meta, dict) or not isinstance(self.meta.get("sessions"), list):
                    raise ValueError("not an object with a list of sessions")
            except (ValueError, UnicodeDecodeError) as e:
                self.close()
                raise RunMismatch(f"{self.run_path} is damaged ({e}); choose another --out, or repair or "
                                  "delete it (samples.jsonl beside it is what a run keeps)") from None
            theirs = {k: self.meta.get(k) for k in IDENTITY_KEYS}
            ours = json.loads(json.dumps({k: identity.get(k) for k in IDENTITY_KEYS}))
            if theirs != ours:
                diff = {k: (theirs[k], ours[k]) for k in IDENTITY_KEYS if theirs[k] != ours[k]}
                self.close()
                raise RunMismatch(f"{self.dir} holds another run (differs in {diff}); "
                                  "choose another --out or delete it")
            data = identity.get(DATA_KEY)
            if self.meta.get(DATA_KEY) is None and data is not None:
                self.meta[DATA_KEY] = data
                self._write_meta()
            elif data is not None and self.meta[DATA_KEY] != data:
                self.close()
                raise RunMismatch(f"{self.dir} holds a run on other data: the same examples' ids carry other "
                                  "questions or answers in this copy of the data set (another file, order or "
                                  "version); choose another --out, or resume with the data the run began with")
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

    def start_session(self, to_do: int, command: str | None = None) -> dict[str, Any]:
        session = {"started": time.time(), "finished": None, "to_do": to_do, "evaluated": 0}
        if command:
            session["command"] = command        # what a report written later quotes
        self.meta["sessions"].append(session)
        self._write_meta()
        return session

    def end_session(self, session: dict[str, Any], evaluated: int) -> None:
        session["finished"] = time.time()
        session["evaluated"] = evaluated
        self._write_meta()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            data = line.encode("utf-8")
        except UnicodeEncodeError:
            # Half of a surrogate pair (a decoder that split an emoji) is valid JSON but no UTF-8:
            # written escaped, it reads back as the same string.
            data = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        with open(self.samples_path, "ab") as f:
            f.write(data)
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
