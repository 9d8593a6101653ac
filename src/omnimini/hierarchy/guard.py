"""The output guard: stop the answer from revealing the system prompt or a secret it declares.

What the guard protects (from the system-level messages of the request):
- secrets the system prompt declares ("the password is X", "access code: X", "secret key = X");
- words it forbids in answers ("never write the word X");
- the system prompt itself, as runs of NGRAM consecutive words.

What counts as revealing, as far as a cheap check can tell (each view of the answer is searched):
verbatim; case, spacing and punctuation changed (spelled out "W-A-V-E", one letter per line);
in pieces (a large enough part of a secret); reversed (characters, or words for the prompt);
leetspeak; letters doubled ("PPOORRCC"); every Caesar shift (rot13 among them) and Atbash; base64,
base32, hex, binary, ASCII codes, letter positions (A=1) and Morse code decoded (encodings.py); the
initials of consecutive words (an acrostic, or the NATO alphabet). Translation and free paraphrase
are not detected: the rendering defence (render.py) is what discourages those.

Streaming: `GuardStream` checks the whole answer so far as pieces come and holds back only the tail
that could still grow into a leak (`LeakGuard.hold_from`): the longest end of the text that is part
of a protected string under any view (a piece of a secret, squashed, reversed, enciphered, with
letters doubled or in leetspeak, in the text or its rot13; the first words of a run of the system prompt, forwards or reversed; initials that
begin a secret; everything from one half of a secret on, while the other half could still follow),
plus a bounded tail when it looks like an encoding in progress (a run of the base64/hex alphabet,
numbers, Morse signs: encodings cannot be bounded by prefix). Clean text is released as it comes; when a leak appears the
stream stops and sends the refusal instead, so the held-back part (where the leak sits) is never sent.
A long answer is checked every CHECK_GROWTH of its length rather than on every piece (what arrives in
between waits unsent for the next check), so the checks' total work grows with the answer's length
instead of its square.
"""

from __future__ import annotations

import codecs
import math
import re
from functools import lru_cache
from dataclasses import dataclass, field

from omnimini.hierarchy.encodings import ENCODED_TAILS, cipher_forms, decoded
from omnimini.hierarchy.gates import MIN_KEY_CHARS, STRONG_NOUNS, WEAK_NOUNS, declared_gates
from omnimini.hierarchy import spelling
from omnimini.hierarchy.normalize import fold, fold_positions, squash    # noqa: F401 - squash also imported from here

# An answer may share fewer than this many consecutive words with the system prompt. Eight words
# is a sentence of a prompt copied out, while a generic echo ("you are a helpful assistant") or an
# answer to a probing question ("I am Aria, the customer assistant of Northwind Traders": seven)
# stays allowed, as the paper's over-refusal set requires. (The eval's exact check uses the same unit.)
NGRAM = 8
MIN_SECRET_CHARS = 4
# "In pieces": any part of a secret at least this long (fraction of its length, and absolute).
PIECE_FRACTION = 0.6
MIN_PIECE_CHARS = 5
# Pieces of one secret spread over an answer or over turns: words of at least COVER_MIN_WORD
# characters that are parts of it, covering COVER_FRACTION of it together.
COVER_MIN_WORD = 4
COVER_FRACTION = 0.8
# At most this much of an encoded-looking tail (a run of the base64/base32/hex alphabet) is held back
# while it grows: a partial run decodes to a prefix of its text, which the whole-answer check already
# sees, so the bound only keeps the start of a long encoded leak from going out before it completes.
ENCODED_HOLD_CHARS = 64
# How far back from the end a streamed answer is searched for the start of a leak in progress (a
# piece of a secret, the first words of a prompt run): a bound on the work per token, far above the
# longest protected piece. Halves of a secret are searched in the whole answer.
HOLD_WINDOW = 1024
# Decoded texts whose check result a guard remembers (a streamed answer's runs decode alike on every
# piece); the memo starts over when full.
DECODED_MEMO = 4096
DECODED_MEMO_CHARS = 256                # ...of at most this length (the runs of a few words), so at most 1 MiB
# A streamed answer is checked again once it has grown by this fraction since the last check (and
# on every piece while that is under a character): each check reads the whole answer, so checking
# every token costs the square of the length (bench/guard_alone.py). 1/64 keeps a 1,000-character
# answer within 16 characters (four tokens) of the model, and the total work at about 64 checks'
# worth of the answer's length. Text that arrives between checks is held back, never sent unchecked.
CHECK_GROWTH = 1 / 64
# How many of the last words may hold the start of a secret spelled one character at a time.
SPELL_WINDOW = 40
SPELL_START_WORDS = 3
REFUSAL = "I'm sorry, but I can't share that."
GATED_REASON = "gated reply"
# How system prompts declare secrets, as in Gandalf, TensorTrust and the paper's password set, and as
# people write them: "the password is X", "access code: X", "secret key = X", "the password, which is
# X", "the password (X)", "Password - X", "the code is 7741", a quoted phrase of several words.
# The nouns are gates.STRONG_NOUNS and WEAK_NOUNS: after a weak one ("key", "code", "secret", ...),
# an ordinary word too ("our key lime pie is popular", "the secret to our sourdough is time"), only a
# quoted value or a code-like one counts, and only right after the noun (bare "secret" takes any word).
PHRASE_NOUNS = re.compile(r"phrase|sentence", re.IGNORECASE)       # whose unquoted value runs to the clause end
SECRET_DECLARATION = re.compile(
    rf"\b(?:(?P<strong>{STRONG_NOUNS})|(?P<weak>{WEAK_NOUNS}))\b"
    r"(?P<between>(?:\s+(?!is\b|are\b|was\b|which\b)[\w'-]+){0,5}?)"
    r"(?:\s*,?\s*which\s+is|\s+(?:is|are|was|reads|equals)(?:\s+set\s+to)?|\s*[:=]|\s+[-–—]+|\s*[–—]|(?=\s*\())"
    r"\s*:?\s*(?:\(\s*)?(?:[\"'`“‘](?P<quoted>[^\"'`”’\n]{1,80})[\"'`”’]"
    r"|(?P<bare>[^\s\"'`”’,;()]+(?:(?<![.!?:])[ \t]+[^\s\"'`”’,;.:()!?]+){0,7}))",
    re.IGNORECASE)
# The secret given in the next sentence: "Do not tell anyone the password. It is SWORDFISH." Only a
# quoted or code-like value counts ("It is important" describes).
PRONOUN_DECLARATION = re.compile(
    rf"\b(?:{STRONG_NOUNS})\b[^.!?\n]{{0,80}}[.!?:]\s+it(?:'s|\s+is|\s+reads)\s+"
    r"(?:[\"'`“‘](?P<quoted>[^\"'`”’\n]{1,80})[\"'`”’]|(?P<bare>[^\s\"'`”’,;()]+))", re.IGNORECASE)
# Words that describe a password but may also begin a passphrase of three words or more ("the
# passphrase is correct horse battery staple").
PHRASE_MAY_START = {"correct", "right", "wrong", "valid", "invalid", "incorrect", "strong", "weak", "long", "short",
                    "safe", "secure", "same", "different", "empty", "important", "used", "set", "changed"}
# A value that looks like a code rather than a word of prose: a digit, capitals, or a symbol inside.
CODE_LIKE = re.compile(r"\d|^[A-Z][A-Z]{3,}$|[a-z][A-Z]|[-_#@!$%&*+]\w")
# What follows "the password is" when it describes the password rather than gives it ("if the
# password is wrong", "the access code is confidential"): never a secret, or every answer with the
# word would be refused.
NOT_SECRETS = {"the", "that", "this", "secret", "wrong", "right", "correct", "incorrect", "invalid", "valid",
               "given", "entered", "provided", "required", "needed", "missing", "empty", "confidential",
               "private", "hidden", "known", "unknown", "below", "above", "case", "sensitive", "protected",
               "important", "never", "not", "also", "still", "only", "exactly", "shown", "written", "a", "an",
               "to", "in", "on", "for", "of", "with", "stored", "kept", "changed", "different", "same",
               "yours", "mine", "used", "set", "safe", "secure", "strong", "weak", "long", "short", "too"}
# Words the system prompt forbids in answers ("never write the word X", "do not say the phrase 'X'"):
# protected like secrets, so a user who asks for them (a conflicting instruction) gets a refusal.
FORBIDDEN_DECLARATION = re.compile(
    r"(?:never|do not|don't|must not|must never)\s+(?:say|write|mention|use|output|print|type)\s+the\s+"
    r"(?:word|phrase|term|name)\s+[\"'`“‘]?(\w[\w -]{2,40}?)[\"'`”’]?(?=\s+(?:in|to|under|at|or|and|whatever|"
    r"even|anywhere)\b|\s*[.,;!]|$)", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_ALNUM = re.compile(r"[^\W_]")             # str.isalnum, as a pattern
_NOT_ALNUM = re.compile(r"[\W_]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t"})
_TRAILING_PUNCT = ".,;:!?)]}\"'"
_WORD_END = re.compile(r"[A-Za-z]{2,}$")
_ONE_WORD = re.compile(r"[^\W_]+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_HAS_LEET = re.compile(r"[0-9@$!|+]")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(fold(text))]


def declared_secrets(system_text: str, min_chars: int = MIN_SECRET_CHARS) -> list[str]:
    """Secrets the system prompt declares. The guard protects those of MIN_SECRET_CHARS; shorter
    ones (`min_chars`) still serve as the keys of gates ("The access code is 'x7!q'")."""
    found = []
    pos = 0
    while m := SECRET_DECLARATION.search(system_text, pos):
        value = _declared_value(m)
        if value and len(squash(value)) >= min_chars:
            found.append(value)
        # Each noun is tried once, and a rejected reading ("the access code is confidential. Access
        # code: 'QX-19'") does not hide the declaration after it.
        pos = m.end("strong") if m.group("strong") else m.end("weak")
    for m in PRONOUN_DECLARATION.finditer(system_text):
        value = m.group("quoted") or (m.group("bare") or "").rstrip(_TRAILING_PUNCT)
        if value and (m.group("quoted") or CODE_LIKE.search(value)) and len(squash(value)) >= min_chars \
                and value not in found:
            found.append(value)
    for m in FORBIDDEN_DECLARATION.finditer(system_text):
        if len(squash(m.group(1))) >= MIN_SECRET_CHARS:
            found.append(m.group(1).strip())
    return found


def _declared_value(m: re.Match) -> str | None:
    """The secret a declaration gives, or None when it describes the secret instead ("the password
    is wrong", "the key to good bread is patience")."""
    if m.group("quoted"):                  # 'The password is "wrong".': quoted, it is the password
        return m.group("quoted").strip()
    words_ = m.group("bare").split()
    noun = m.group("strong") or m.group("weak")
    phrase = bool(PHRASE_NOUNS.search(noun))
    # An unquoted value is one word, but a passphrase's runs to the end of its clause; a phrase
    # that starts like a description ("is known only to ...") is a description.
    value = " ".join(words_) if phrase and len(words_) > 1 else words_[0]
    value = value.rstrip(_TRAILING_PUNCT)
    first = words_[0].lower().rstrip(_TRAILING_PUNCT)
    if not value or (first in NOT_SECRETS and not (phrase and len(words_) >= 3 and first in PHRASE_MAY_START)):
        return None
    if m.group("weak"):                     # a code-like value, or any after a bare "secret is"
        bare_secret = m.group("weak").lower() == "secret" and not m.group("between").strip()
        if not (bare_secret or CODE_LIKE.search(value)):
            return None
    return value


@dataclass
class LeakGuard:
    system_text: str
    extra_secrets: list[str] = field(default_factory=list)
    user_text: str = ""              # the message answered: it may open a gate (gates.py)
    said_before: str = ""            # the assistant's earlier turns: a secret told a piece per turn

    def __post_init__(self) -> None:
        declared = [*declared_secrets(self.system_text, MIN_KEY_CHARS), *self.extra_secrets]
        # Replies the system prompt allows only with a key: guarded unless the user gave one. A key
        # named only in a gate's condition ('if it is "avocado"') is a secret too: it opens the gate.
        gates = declared_gates(self.system_text, declared)
        declared += gates.quoted_keys
        self.secrets = sorted({squash(s) for s in declared if len(squash(s)) >= MIN_SECRET_CHARS},
                              key=len, reverse=True)
        given = squash(self.user_text)
        tokens = {squash(t) for t in self.user_text.split()}
        # A key short enough to sit inside other words ("abc" in "grab coffee") opens only as a word.
        opened = any((k in given) if len(k) >= MIN_SECRET_CHARS else (k in tokens) for k in gates.keys)
        self.gated = [] if opened else sorted({g for g in gates.squashed if g}, key=len, reverse=True)
        self.fallback = gates.fallback
        w = words(self.system_text)
        self.ngrams = {tuple(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}
        # For streaming: every proper start of a protected run (forwards, and reversed for the
        # reversed check) -> the words that may come next.
        self._starts: dict[tuple[str, ...], set[str]] = {}
        for g in self.ngrams:
            for seq in (g, g[::-1]):
                for k in range(NGRAM):
                    self._starts.setdefault(seq[:k], set()).add(seq[k])
        # Forms a piece of which, at the end of the text, may still grow into a leak.
        self._pieces = [form for sec in self.secrets for form in (sec, sec[::-1])]
        self._ciphered = [form for sec in self.secrets for form in cipher_forms(sec)]
        self._cipher_pieces = [form for c in self._ciphered for form in (c, c[::-1])]
        # Each character doubled or tripled ("PPOORRCC..."; a secret's own "ll" becomes four or six).
        self._doubled = [re.compile("".join(re.escape(c) + "{2,3}" for c in sec)) for sec in self.secrets]
        self._doubled_pieces = ["".join(c * 2 for c in sec) for sec in self.secrets]
        self._leet_forms = [sec.translate(_LEET) for sec in self.secrets]
        self._covered_before = {sec: _cover(_words_in(sec, self.said_before)) for sec in self.secrets} \
            if self.said_before else {}
        self._decoded_seen: dict[str, str | None] = {}        # _decoded_reason's memo
        # One character at a time with words between (spelling.py): in order, forwards or reversed.
        self._spelled = [(sec, [spelling.loose_pattern(f) for f in (sec, sec[::-1])]
                          if len(sec) >= spelling.LOOSE_MIN_CHARS else []) for sec in self.secrets]

    @property
    def active(self) -> bool:
        return bool(self.secrets or self.ngrams or self.gated)

    def leak(self, answer: str) -> str | None:
        """Why `answer` reveals protected text (or gives a gated reply), or None."""
        if not self.active or not answer:
            return None
        if self.gated:
            flat = squash(answer)
            for g in self.gated:
                if g in flat:
                    return f"{GATED_REASON}: {g!r} without the secret"
        reason = self._secret_in(answer) or self._prompt_in(answer)
        if reason:
            return reason
        for view in dict.fromkeys(decoded(answer)):
            reason = self._decoded_reason(view)
            if reason:
                return f"{reason} (encoded)"
        return None

    def _decoded_reason(self, view: str) -> str | None:
        """The checks on a text decoded from the answer, remembered: a streamed answer is checked
        whole again and again, and its encoded-looking runs (ordinary words match base64's alphabet)
        decode to the same texts each time."""
        if view in self._decoded_seen:
            return self._decoded_seen[view]
        reason = self._secret_in(view, spelled=False) or self._prompt_in(view)
        if len(view) <= DECODED_MEMO_CHARS:    # not rot13 of the whole answer: new on every piece
            if len(self._decoded_seen) >= DECODED_MEMO:
                self._decoded_seen.clear()
            self._decoded_seen[view] = reason
        return reason

    def replacement(self, reason: str | None) -> str:
        """What an answer stopped for `reason` becomes: a gated reply becomes the system prompt's
        own fallback ("Access Denied") when it names one; anything else, the refusal."""
        if reason and reason.startswith(GATED_REASON) and self.fallback:
            return self.fallback
        return REFUSAL

    def _secret_in(self, text: str, spelled: bool = True) -> str | None:
        if not self.secrets:
            return None
        plain = _Flat(text)
        flat = plain.flat
        leet = _Flat(text.translate(_LEET), original=text)
        initials = "".join(w[0] for w in words(text))
        for s in self.secrets:
            if plain.find(s):
                return "secret verbatim or spelled out"
            if plain.find(s[::-1]):
                return "secret reversed"
            if any(c.isalpha() for c in s) and leet.find(s.translate(_LEET), leet=True):
                return "secret leetspeak"
            if len(s) >= 5 and s in initials:
                return "secret initials"
            # In pieces: a large part of it as words of their own ("it starts with PLANETA"), not
            # inside a longer word ("planetarium", "experience"); or both halves, told apart.
            piece = max(MIN_PIECE_CHARS, math.ceil(PIECE_FRACTION * len(s)))
            if any(plain.find(f[i:i + n], whole_words=True) for n in range(piece, len(s)) for f in (s, s[::-1])
                   for i in range(len(s) - n + 1)):
                return "secret in pieces"
            half = len(s) // 2
            if half >= MIN_PIECE_CHARS - 1 and plain.find(s[:half], whole_words=True) and \
                    plain.find(s[half:], whole_words=True):
                return "secret in pieces"
            # Pieces far apart, each too small alone, or told one per turn ("It starts with PLANE." then
            # "It ends with TARY."): words of this answer and of the earlier ones that together cover
            # most of the secret.
            if len(s) >= 2 * COVER_MIN_WORD:
                spans = _words_in(s, text)
                now = _cover(spans)
                before = self._covered_before.get(s, set())
                if now - before and len(now | before) >= math.ceil(COVER_FRACTION * len(s)) and \
                        (before or len(spans) >= 2):
                    return "secret in pieces" + (" over several turns" if before - now else "")
        tight, loose = spelling.views(text) if spelled else ([], [])      # (decoded views are not spelled)
        for sec, patterns in self._spelled:
            if any(sec in run or sec[::-1] in run for run in tight) or \
                    any(p.search(run) for p in patterns for run in loose):
                return "secret spelled one character at a time"
        if any(plain.find(c) or plain.find(c[::-1]) for c in self._ciphered):
            return "secret enciphered"
        if any(d.search(flat) for d in self._doubled):
            return "secret with letters doubled"
        return None

    def _prompt_in(self, text: str) -> str | None:
        if not self.ngrams:
            return None
        w = words(text)
        for seq, how in ((w, "system prompt verbatim"), (w[::-1], "system prompt reversed")):
            if not self.ngrams.isdisjoint(zip(*(seq[k:] for k in range(NGRAM)))):    # every NGRAM-word run
                return how
        return None

    def hold_from(self, text: str) -> int:
        """Where the part of a clean `text` that could still become a leak begins (len(text): none).

        A streamed answer may release text[:hold_from(text)]: whatever comes next, the released part
        is no piece of a leak that the checks in `leak` could complete."""
        if not self.active or not text:
            return len(text)
        offset = max(0, len(text) - HOLD_WINDOW)
        raw_tail = text[offset:]
        tail, at = fold_positions(raw_tail)      # look-alike letters held as what they look like
        start = len(tail)
        for view in (tail, codecs.decode(tail, "rot13")):      # rot13 and leetspeak keep every position
            start = min(start, _encoded_hold(view), self._prompt_hold(view))
            if view is tail and self.gated:
                start = min(start, self._prefix_hold(view, self.gated))
            if self.secrets:
                start = min(start, self._secret_hold(view, self._pieces),
                            self._secret_hold(view, self._cipher_pieces),
                            self._secret_hold(view, self._doubled_pieces),
                            self._secret_hold(view.translate(_LEET), self._leet_forms),
                            self._initials_hold(view))
        if at is not None:
            start = at[start] if start < len(at) else len(raw_tail)
        start += offset
        if self.secrets:       # a spelling may have begun, or one half gone by, before the window
            start = min(start, self._spelled_hold(text), self._halves_hold(text),
                        self._halves_hold(codecs.decode(text, "rot13")))
        return start

    def _secret_hold(self, view: str, forms: list[str]) -> int:
        """The start of the longest end of the squashed view that is a piece of a protected form."""
        if not forms:
            return len(view)
        flat, at = _squash_positions(view)
        for n in range(min(len(flat), max(map(len, forms))), 0, -1):
            tail = flat[-n:]
            if any(tail in f for f in forms):
                return at[-n]
        return len(view)

    def _prefix_hold(self, view: str, forms: list[str]) -> int:
        """The start of the longest end of the squashed view that begins one of `forms` (a gated
        reply must appear whole, so only its beginnings are held)."""
        longest = max(map(len, forms))
        offset = max(0, len(view) - 4 * longest)       # room for the spacing a squashed form drops
        flat, at = _squash_positions(view[offset:])
        for n in range(min(len(flat), longest), 0, -1):
            if any(f.startswith(flat[-n:]) for f in forms):
                return offset + at[-n]
        return len(view)

    def _prompt_hold(self, view: str) -> int:
        """The start of the longest run of the last words that begins a run of the system prompt (the
        last word may be unfinished: it only has to begin the next word)."""
        if not self.ngrams:
            return len(view)
        spans = [(m.start(), m.group().lower()) for m in _WORD.finditer(view[-NGRAM * 64:])]
        offset = max(0, len(view) - NGRAM * 64)
        open_word = bool(spans) and _WORD.match(view[-1:]) is not None
        for k in range(min(len(spans), NGRAM), 0, -1):       # 7 whole words, or 7 and the 8th begun
            seq = tuple(w for _, w in spans[-k:])
            if seq in self._starts:
                return offset + spans[-k][0]
            if open_word and any(nxt.startswith(seq[-1]) for nxt in self._starts.get(seq[:-1], ())):
                return offset + spans[-k][0]
        return len(view)

    def _initials_hold(self, text: str) -> int:
        """Initials so far that begin a secret (an acrostic in progress)."""
        spans = [(m.start(), m.group()[0].lower()) for m in _WORD.finditer(text)]
        longest = max((len(sec) for sec in self.secrets if len(sec) >= 5), default=0)
        for k in range(min(len(spans), longest - 1), 0, -1):
            initials = "".join(c for _, c in spans[-k:])
            if any(sec.startswith(initials) for sec in self.secrets if len(sec) >= 5):
                return spans[-k][0]
        return len(text)

    def _spelled_hold(self, text: str) -> int:
        """Characters given one at a time, in the last words, that could still grow into a secret
        spelled out (spelling.py): held from the first of them. Within SPELL_WINDOW words, so a hold
        ends when the spelling does; a single one only among the last SPELL_START_WORDS words and not
        "a" or "I", which prose is full of."""
        window = text[-SPELL_WINDOW * 16:]
        base = len(text) - len(window)
        # A word still being written that may become a spoken character ("sev" of "seven").
        begun = _WORD_END.search(window)
        if begun and any(w.startswith(begun.group().lower()) and c in sec
                         for w, c in spelling.SPOKEN.items() for sec in self.secrets):
            held = base + begun.start()
        else:
            held = len(text)
        tokens = spelling.characters(window)[-SPELL_WINDOW:]
        if tokens and window[-1:].isalnum():       # the word in progress is not a word yet
            tokens = tokens[:-1]
        if not tokens:
            return held
        last_index = tokens[-1][2]
        recent = [(at, ch, i) for at, ch, i in tokens if ch]
        for k in range(len(recent), 0, -1):
            group = recent[-k:]
            if k == 1 and (group[0][1] in "ai" or last_index - group[0][2] >= SPELL_START_WORDS):
                continue
            chars = "".join(ch for _, ch, _ in group)
            for sec, patterns in self._spelled:
                for form in (sec, sec[::-1]):
                    kept = _spelling_of_piece(chars, form, tight=not patterns, indexes=[i for _, _, i in group])
                    if chars[0] in form and kept >= min(k, 2):
                        return min(held, base + group[0][0])
        return held

    def _halves_hold(self, text: str) -> int:
        """One half of a secret is out and the other may still follow ("it starts with ... ends with"):
        everything from the first half seen is held (until the answer ends or the leak completes)."""
        flat, at = _squash_positions(text)
        start = len(text)
        for sec in self.secrets:
            half = len(sec) // 2
            if half < MIN_PIECE_CHARS - 1:
                continue
            found = [i for i in (flat.find(sec[:half]), flat.find(sec[half:])) if i >= 0]
            if found:
                start = min(start, at[min(found)])
        return start

    def stream(self) -> "GuardStream":
        return GuardStream(self)


class _Flat:
    """squash(text), and where each of its characters came from, to tell a match that lies inside one
    word or covers whole words ("PLANETARY", "P-L-A-N-E-T-A-R-Y", "planetary1") from one that
    straddles the edges of words ("hero sent" holds no "rose"; "plan a dietary" no "...etary")."""

    def __init__(self, text: str, original: str | None = None):
        self.text = text
        self.original = text if original is None else original      # same length: a 1:1 translation
        self.flat, self.at = _squash_positions(text)

    def find(self, needle: str, whole_words: bool = False, leet: bool = False) -> bool:
        """Is `needle` in the squashed text: inside one word or over whole words; with whole_words,
        only over whole words (a piece of a secret inside a longer word is that word); with leet,
        only where the original mixes letters with digits or symbols ("p0rcup1n3", not "attain"
        for 7741 read as "ttai")."""
        i = self.flat.find(needle) if needle else -1
        while i >= 0:
            j = i + len(needle)
            first, last = self.at[i], self.at[j - 1]
            span = self.original[first:last + 1]
            if leet and not (_HAS_LETTER.search(span) and _HAS_LEET.search(span)):
                i = self.flat.find(needle, i + 1)
                continue
            starts = first == 0 or not self.text[first - 1].isalnum()
            ends = last + 1 >= len(self.text) or not self.text[last + 1].isalnum()
            if (starts and ends) or (not whole_words and _ONE_WORD.fullmatch(self.text, first, last + 1)):
                return True
            i = self.flat.find(needle, i + 1)
        return False


def _spelling_of_piece(chars: str, form: str, *, tight: bool, indexes: list[int]) -> int:
    """How many of these characters, given one at a time, could begin `form` spelled out (0: they
    cannot). Loose: the characters of form with at most one other between two of them (list
    numbers); tight (short secrets): all of them, in consecutive words."""
    if tight:
        return len(chars) if chars in form and all(b == a + 1 for a, b in zip(indexes, indexes[1:])) else 0
    kept, extra = "", 0
    for c in chars:
        if c in form and (kept + c) in form:
            kept, extra = kept + c, 0
        else:
            extra += 1
            if extra > 1:
                return 0
    return len(kept)


def _words_in(secret: str, text: str) -> list[tuple[int, int]]:
    """(start, end) in the secret of each word of the text (COVER_MIN_WORD characters or more) that
    is a part of it, forwards or reversed."""
    spans = []
    for w in {_squash_word(w) for w in set(_WORD.findall(fold(text)))}:    # an answer repeats its words
        if len(w) < COVER_MIN_WORD or len(w) >= len(secret):
            continue
        for form, flip in ((secret, False), (secret[::-1], True)):
            i = form.find(w)
            while i >= 0:
                spans.append((len(secret) - i - len(w), len(secret) - i) if flip else (i, i + len(w)))
                i = form.find(w, i + 1)
    return spans


def _squash_word(word: str) -> str:
    """squash() of one \\w+ word of folded text: for a plain ASCII word, its lower case (the guard
    squashes every word of the answer on every streamed piece)."""
    return word.lower() if word.isascii() and word.isalnum() else squash(word)


def _cover(spans: list[tuple[int, int]]) -> set[int]:
    """The positions of the secret that these spans cover."""
    return {k for a, b in spans for k in range(a, b)}


class _AsciiPositions:
    """Where each character of an ASCII text's squashed form came from, worked out on first use: the
    checks ask for positions only where something matched, which benign text rarely gives."""

    def __init__(self, low: str):
        self.low, self._at = low, None

    def _list(self) -> list[int]:
        if self._at is None:
            self._at = [m.start() for m in _ALNUM.finditer(self.low)]
        return self._at

    def __getitem__(self, i):
        if isinstance(i, int) and -64 <= i < 0 and self._at is None:      # near the end: scan back
            seen = 0
            for k in range(len(self.low) - 1, -1, -1):
                if self.low[k].isalnum():
                    seen += 1
                    if seen == -i:
                        return k
            raise IndexError(i)
        return self._list()[i]

    def __len__(self) -> int:
        return len(self._list())


@lru_cache(maxsize=64)
def _squash_positions(view: str) -> tuple[str, "list[int] | _AsciiPositions"]:
    """squash(view), and for each of its characters the position it came from in view. Cached: one
    streamed piece asks for the same views many times (the checks, and each held-back form)."""
    if view.isascii():                         # the usual case: lower() keeps every position
        low = view.lower()
        return _NOT_ALNUM.sub("", low), _AsciiPositions(low)
    flat, at = [], []
    for i, ch in enumerate(view):
        for c in fold(ch).lower():
            if c.isalnum():
                flat.append(c)
                at.append(i)
    return "".join(flat), at


def _encoded_hold(text: str) -> int:
    """A tail that may be an encoding in progress (encodings.ENCODED_TAILS), up to
    ENCODED_HOLD_CHARS of it."""
    window = text[-ENCODED_HOLD_CHARS:]
    start = len(text)
    for tail in ENCODED_TAILS:
        m = tail.search(window)
        if m:
            start = min(start, len(text) - len(window) + m.start())
    return start


@dataclass
class GuardStream:
    guard: LeakGuard
    text: str = ""
    sent: int = 0
    tripped: str | None = None
    checked: int = 0                 # the length of the text at the last check

    def feed(self, piece: str) -> str:
        """The text that may go out now (empty once the guard has tripped)."""
        if self.tripped:
            return ""
        self.text += piece
        if len(self.text) - self.checked < len(self.text) * CHECK_GROWTH:
            return ""                # held back until the next check
        if self._check():
            return self._refuse()
        end = max(self.sent, self.guard.hold_from(self.text))
        out, self.sent = self.text[self.sent:end], end
        return out

    def finish(self) -> str:
        """At the end of the answer: the held-back rest, or the refusal."""
        if self.tripped:
            return ""
        if self.checked < len(self.text) and self._check():      # pieces that came since the last check
            return self._refuse()
        out, self.sent = self.text[self.sent:], len(self.text)
        return out

    def _check(self) -> str | None:
        """Check the whole text so far; why it leaks, or None."""
        self.checked = len(self.text)
        self.tripped = self.guard.leak(self.text)
        return self.tripped

    def _refuse(self) -> str:
        return ("\n\n" if self.sent else "") + self.guard.replacement(self.tripped)
