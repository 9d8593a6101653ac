"""Who gets the cores first: latency-critical speech work over the token decode loop.

On a small CPU every model shares the same few cores, and llama.cpp's decode threads spin at their
barriers: when Piper or Whisper runs beside a decoding chat model, both slow down by about half,
and in the voice loop that lands on the path to the first audio byte (the first clause waits for
Piper while the model keeps writing the rest of the answer). So work someone is waiting on *now*
(the voice loop's transcription and its first clause) marks itself urgent, and the decode loop
waits between two steps until no urgent work runs. The model loses a few tens of milliseconds of a
response that is read or spoken later anyway; the listener hears the answer that much sooner.

An urgent section is short (tens of milliseconds). The decode loop never waits longer than
MAX_WAIT_S at a time, so a stuck or very long urgent section only slows decoding, never stalls it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

# Longest a decode step waits for urgent work: a few times the longest urgent section we expect
# (Whisper tiny on a short clip, ~0.1 s; Piper on a first clause, ~0.06 s), so that the gate can
# delay but never starve the chat models.
MAX_WAIT_S = 0.5


class CpuGate:
    def __init__(self) -> None:
        self._urgent = 0
        self._cond = threading.Condition()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Run a latency-critical section while the decode loops hold off."""
        with self._cond:
            self._urgent += 1
        try:
            yield
        finally:
            with self._cond:
                self._urgent -= 1
                if not self._urgent:
                    self._cond.notify_all()

    @property
    def busy(self) -> bool:
        return self._urgent > 0

    def yield_to_urgent(self, timeout: float = MAX_WAIT_S) -> bool:
        """Called by a decode loop between steps: returns at once when nothing is urgent, else when
        the urgent work is done or `timeout` passes. True if it waited."""
        if not self._urgent:          # the common case, without taking the lock
            return False
        with self._cond:
            self._cond.wait_for(lambda: not self._urgent, timeout)
        return True


# One per process: the cores are per process too.
GATE = CpuGate()
