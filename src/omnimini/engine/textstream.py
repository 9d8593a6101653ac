"""Turn a stream of token bytes into text that is safe to show: whole UTF-8 characters only, and
never a piece of a stop sequence that might still complete. Logprob entries travel with the text
of their token, so a streamed delta and its logprobs always agree."""

from __future__ import annotations

import codecs

from omnimini.engine.base import TokenInfo


def partial_marker_suffix(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `markers`: text
    that must be held back until it is known whether a marker follows."""
    for k in range(min(len(text), max(len(m) for m in markers) - 1), 0, -1):
        suffix = text[-k:]
        if any(m.startswith(suffix) for m in markers):
            return k
    return 0


class TextStream:
    def __init__(self, stops: tuple[str, ...] = ()):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = tuple(s for s in stops if s)
        self._pending = ""            # decoded but not yet released
        self._released = 0            # characters released so far
        self._decoded = 0             # characters decoded so far
        self._tokens: list[tuple[int, int, TokenInfo | None]] = []  # (start, end, info) unreleased
        self.stopped = False          # a stop sequence was found

    def push(self, piece: bytes, info: TokenInfo | None = None) -> tuple[str, list[TokenInfo]]:
        """Add one token's bytes. Returns (text to release, logprob entries to release)."""
        start = self._decoded
        new = self._decoder.decode(piece)
        self._decoded += len(new)
        self._tokens.append((start, self._decoded, info))
        self._pending += new
        if not self._stops:
            return self._release(len(self._pending), final=False)
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._release(cut, final=True)
        return self._release(len(self._pending) - self._held_back(), final=False)

    def finish(self) -> tuple[str, list[TokenInfo]]:
        """The generation ended (end of turn or length): release everything still held."""
        if self.stopped:
            return "", []
        tail = self._decoder.decode(b"", final=True)
        self._pending += tail
        self._decoded += len(tail)
        return self._release(len(self._pending), final=True)

    def _held_back(self) -> int:
        return partial_marker_suffix(self._pending, self._stops)

    def _release(self, n: int, *, final: bool) -> tuple[str, list[TokenInfo]]:
        out, self._pending = self._pending[:n], ("" if final else self._pending[n:])
        self._released += n
        # A token is released once all of its text is; at the end, any token that began before
        # the cut (a token that straddles a stop sequence keeps its entry, as it was generated).
        infos: list[TokenInfo] = []
        keep: list[tuple[int, int, TokenInfo | None]] = []
        for start, end, info in self._tokens:
            if end <= self._released or (final and start < self._released):
                if info is not None:
                    infos.append(info)
            elif not final:
                keep.append((start, end, info))
        self._tokens = keep
        return out, infos
