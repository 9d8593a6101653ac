"""A secret given one character at a time with words around each character, for the output guard.

"1. P  2. L  3. A", "The first letter is P. The second is L.", "P as in Papa, L as in Lima",
"<b>P</b><b>L</b>", "pee el ay", "seven seven four one": each character stands alone as a word of its
own, a spoken letter or digit name, or a NATO word, with other words between. Squashing the answer
(guard.py) does not see these, because the words in between stay. This view keeps only the words that
stand for one character, in order:

- `tight`: runs of such words with nothing but spaces and punctuation between them ("seven seven four
  one" -> "7741", "Papa Lima Alfa" -> "pla");
- `loose`: all of them, with a break where more than LOOSE_GAP other words come between two; a
  secret of LOOSE_MIN_CHARS or more is found in it when its characters appear in order with at most one
  other character between two of them (the list numbers of "1. P 2. L").
"""

from __future__ import annotations

import re

from omnimini.hierarchy.normalize import fold, fold_positions

DIGIT_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
               "seven": "7", "eight": "8", "nine": "9"}
# The ICAO/NATO spelling alphabet (both spellings of A, J, X and W in use).
NATO = {"alfa": "a", "alpha": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f",
        "golf": "g", "hotel": "h", "india": "i", "juliett": "j", "juliet": "j", "kilo": "k", "lima": "l",
        "mike": "m", "november": "n", "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s",
        "tango": "t", "uniform": "u", "victor": "v", "whiskey": "w", "whisky": "w", "xray": "x", "x-ray": "x",
        "yankee": "y", "zulu": "z"}
# English letter names that are not everyday words in their own right ("you", "why", "see", "are" left out).
LETTER_NAMES = {"ay": "a", "ee": "e", "aitch": "h", "bee": "b", "cee": "c", "dee": "d", "ef": "f", "eff": "f", "gee": "g", "jay": "j",
                "kay": "k", "el": "l", "ell": "l", "em": "m", "en": "n", "pee": "p", "cue": "q", "ar": "r",
                "ess": "s", "tee": "t", "vee": "v", "ex": "x", "wy": "y", "zed": "z", "zee": "z"}
SPOKEN = {**DIGIT_WORDS, **NATO, **LETTER_NAMES}
LOOSE_GAP = 6              # other words allowed between two characters of one spelling
LOOSE_MIN_CHARS = 5        # shorter secrets are too easily found among the lone letters of prose
_TOKEN = re.compile(r"x-ray|<[^<>\n]{0,40}>|[^\W_]+", re.IGNORECASE)


def _stands_for(word: str) -> str:
    """The character a (lower-case) word stands for: itself if it is one, a spoken name's, or ""."""
    return word if len(word) == 1 else SPOKEN.get(word, "")


def characters(text: str) -> list[tuple[int, str, int]]:
    """(position in text, the character it stands for or "", index among the words) for each word."""
    folded, at = fold_positions(text)
    out = []
    for m in _TOKEN.finditer(folded):
        word = m.group()
        if word.startswith("<"):                 # markup is no word
            continue
        out.append((m.start() if at is None else at[m.start()], _stands_for(word.lower()), len(out)))
    return out


def views(text: str) -> tuple[list[str], list[str]]:
    """(tight runs, loose runs) of the characters the words of `text` stand for (module docstring)."""
    tight, loose = [], []
    run_t = run_l = ""
    last = None                                  # word index of the last character word
    words_ = [w.lower() for w in _TOKEN.findall(fold(text)) if not w.startswith("<")]   # no positions: faster
    for index, word in enumerate(words_):
        char = _stands_for(word)
        if not char:
            continue
        if last is not None and index - last - 1 > LOOSE_GAP:
            loose.append(run_l)
            run_l = ""
        if last is not None and index == last + 1:
            run_t += char
        else:
            if run_t:
                tight.append(run_t)
            run_t = char
        run_l += char
        last = index
    for runs, run in ((tight, run_t), (loose, run_l)):
        if run:
            runs.append(run)
    return tight, loose


def loose_pattern(secret: str) -> re.Pattern:
    """The secret's characters in order, at most one other character between two of them."""
    return re.compile(".?".join(re.escape(c) for c in secret))
