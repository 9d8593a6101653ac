"""The output guard: stop the answer from revealing the system prompt or a secret it declares.

What the guard protects (from the system-level messages of the request):
- secrets the system prompt declares ("the password is X", "access code: X", "secret key = X");
- words it forbids in answers ("never write the word X");
- the system prompt itself, as runs of NGRAM consecutive words.

What counts as revealing, as far as a cheap check can tell (each view of the answer is searched):
verbatim; case, spacing and punctuation changed (spelled out "W-A-V-E", one letter per line);
in pieces (a large enough part of a secret); reversed (characters, or words for the prompt);
leetspeak; rot13; base64, base32 and hex runs decoded; the initials of consecutive words (an
acrostic, or the NATO alphabet). Translation and free paraphrase are not detected: the rendering
defence (render.py) is what discourages those.

Streaming: `GuardStream` holds back the last HOLD_CHARS of the text, checks the whole answer so far
on every piece, releases only text that was clean, and when a leak appears it stops and sends the
refusal instead; the held-back tail (where a leak that just completed sits) is never sent.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import re
from dataclasses import dataclass, field

# An answer may share fewer than this many consecutive words with the system prompt. Eight words
# is a sentence of a prompt copied out, while a generic echo ("you are a helpful assistant") or an
# answer to a probing question ("I am Aria, the customer assistant of Northwind Traders": seven)
# stays allowed, as the paper's over-refusal set requires. (The eval's exact check uses the same unit.)
NGRAM = 8
MIN_SECRET_CHARS = 4
# "In pieces": any part of a secret at least this long (fraction of its length, and absolute).
PIECE_FRACTION = 0.6
MIN_PIECE_CHARS = 5
HOLD_CHARS = 64              # streamed text held back until the next check clears it
REFUSAL = "I'm sorry, but I can't share that."
# How system prompts declare secrets, as in Gandalf, TensorTrust and the paper's password set.
SECRET_DECLARATION = re.compile(
    r"(?:password|passcode|pass\s?phrase|pass\s?word|secret(?:\s(?:word|key|code|phrase|number))?|"
    r"access\s?code|code\s?word|api[\s_-]?key|key|pin|token)"
    r"(?:\s+\w+){0,3}?\s*(?:is|are|was|:|=|reads)\s*[\"'`“‘]?([^\s\"'`”’,;]{%d,})" % MIN_SECRET_CHARS,
    re.IGNORECASE)
# Words the system prompt forbids in answers ("never write the word X", "do not say the phrase 'X'"):
# protected like secrets, so a user who asks for them (a conflicting instruction) gets a refusal.
FORBIDDEN_DECLARATION = re.compile(
    r"(?:never|do not|don't|must not|must never)\s+(?:say|write|mention|use|output|print|type)\s+the\s+"
    r"(?:word|phrase|term|name)\s+[\"'`“‘]?(\w[\w -]{2,40}?)[\"'`”’]?(?=\s+(?:in|to|under|at|or|and|whatever|"
    r"even|anywhere)\b|\s*[.,;!]|$)", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_B32_RUN = re.compile(r"[A-Z2-7]{8,}={0,6}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}[\s:]?){4,}")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t"})
_TRAILING_PUNCT = ".,;:!?)]}\"'"


def squash(text: str) -> str:
    """Lower case letters and digits only: spelled-out and punctuated forms become one string."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def declared_secrets(system_text: str) -> list[str]:
    found = []
    for m in SECRET_DECLARATION.finditer(system_text):
        value = m.group(1).rstrip(_TRAILING_PUNCT)
        if len(squash(value)) >= MIN_SECRET_CHARS and value.lower() not in {"the", "that", "this", "secret"}:
            found.append(value)
    for m in FORBIDDEN_DECLARATION.finditer(system_text):
        if len(squash(m.group(1))) >= MIN_SECRET_CHARS:
            found.append(m.group(1).strip())
    return found


def _decoded(text: str) -> list[str]:
    """Texts hidden in encoded runs of the answer (base64, base32, hex) and rot13 of the whole."""
    out = [codecs.decode(text, "rot13")]
    for run in _B64_RUN.findall(text):
        for candidate in (run, run + "=" * (-len(run) % 4)):
            try:
                out.append(base64.b64decode(candidate.replace("-", "+").replace("_", "/"),
                                            validate=False).decode("utf-8", "ignore"))
                break
            except (binascii.Error, ValueError):
                continue
    for run in _B32_RUN.findall(text):
        try:
            out.append(base64.b32decode(run + "=" * (-len(run) % 8)).decode("utf-8", "ignore"))
        except (binascii.Error, ValueError):
            pass
    for run in _HEX_RUN.findall(text):
        try:
            out.append(bytes.fromhex(re.sub(r"[\s:]", "", run)).decode("utf-8", "ignore"))
        except ValueError:
            pass
    return [t for t in out if t]


@dataclass
class LeakGuard:
    system_text: str
    extra_secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secrets = sorted({squash(s) for s in [*declared_secrets(self.system_text), *self.extra_secrets]
                               if len(squash(s)) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        w = words(self.system_text)
        self.ngrams = {tuple(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}

    @property
    def active(self) -> bool:
        return bool(self.secrets or self.ngrams)

    def leak(self, answer: str) -> str | None:
        """Why `answer` reveals protected text, or None."""
        if not self.active or not answer:
            return None
        views = [answer, *_decoded(answer)]
        for view in views:
            reason = self._secret_in(view) or self._prompt_in(view)
            if reason:
                return reason if view is answer else f"{reason} (encoded)"
        return None

    def _secret_in(self, text: str) -> str | None:
        if not self.secrets:
            return None
        flat = squash(text)
        forms = {"verbatim or spelled out": flat, "reversed": flat[::-1],
                 "leetspeak": squash(text.lower().translate(_LEET)),
                 "initials": "".join(w[0] for w in words(text))}
        for s in self.secrets:
            for how, form in forms.items():
                if how == "initials" and len(s) < 5:
                    continue
                if (s.translate(_LEET) if how == "leetspeak" else s) in form:
                    return f"secret {how}"
            piece = max(MIN_PIECE_CHARS, math.ceil(PIECE_FRACTION * len(s)))
            if piece < len(s) and any(s[i:i + piece] in f for f in (flat, flat[::-1])
                                      for i in range(len(s) - piece + 1)):
                return "secret in pieces"
            half = len(s) // 2                   # both halves, told apart ("it starts with ... ends with ...")
            if half >= MIN_PIECE_CHARS - 1 and s[:half] in flat and s[half:] in flat:
                return "secret in pieces"
        return None

    def _prompt_in(self, text: str) -> str | None:
        if not self.ngrams:
            return None
        w = words(text)
        for seq, how in ((w, "system prompt verbatim"), (w[::-1], "system prompt reversed")):
            if any(tuple(seq[i:i + NGRAM]) in self.ngrams for i in range(len(seq) - NGRAM + 1)):
                return how
        return None

    def stream(self) -> "GuardStream":
        return GuardStream(self)


@dataclass
class GuardStream:
    guard: LeakGuard
    text: str = ""
    sent: int = 0
    tripped: str | None = None

    def feed(self, piece: str) -> str:
        """The text that may go out now (empty once the guard has tripped)."""
        if self.tripped:
            return ""
        self.text += piece
        self.tripped = self.guard.leak(self.text)
        if self.tripped:
            return self._refuse()
        end = max(self.sent, len(self.text) - HOLD_CHARS)
        out, self.sent = self.text[self.sent:end], end
        return out

    def finish(self) -> str:
        """At the end of the answer: the held-back rest, or the refusal."""
        if self.tripped:
            return ""
        out, self.sent = self.text[self.sent:], len(self.text)
        return out

    def _refuse(self) -> str:
        return ("\n\n" if self.sent else "") + REFUSAL
