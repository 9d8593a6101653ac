"""Text normalisation shared by the output guard and the gates: one definition of "the same text".

`fold` maps the ways of writing a letter that look the same to a reader onto one: compatibility
forms (full-width "ＰＡＳＳ", mathematical "𝐏𝐀𝐒𝐒", circled "Ⓟ"; Unicode NFKD), accents and other
combining marks dropped, invisible format characters (zero-width spaces and joiners, soft hyphens:
category Cf) removed, and the look-alike letters of other scripts that NFKD keeps (Cyrillic "Р",
Greek "Ρ", small capitals "ᴘ") mapped to the Latin letter they are drawn like, after Unicode's
confusables (UTS #39, confusables.txt; the letters of Latin shape only). Both sides of a comparison
are folded, so non-Latin text still matches itself.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# UTS #39 confusables of Latin letters, from Cyrillic, Greek and the small capitals of IPA.
CONFUSABLES = str.maketrans({
    # Cyrillic capitals and small letters
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "h",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "α": "a", "ρ": "p", "ι": "i", "κ": "k",
    # small capitals
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
})


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    out = []
    for c in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(c) or unicodedata.category(c) == "Cf":
            continue
        out.append(c)
    return "".join(out).translate(CONFUSABLES)


def fold(text: str) -> str:
    """Look-alike writing folded to one form (module docstring); ASCII text is returned as it is."""
    if text.isascii():
        return text
    return "".join(_fold_char(ch) for ch in text)


def fold_positions(text: str) -> tuple[str, list[int] | None]:
    """fold(text), and for each of its characters the position in text it came from (None: the same
    positions, for ASCII text)."""
    if text.isascii():
        return text, None
    out, at = [], []
    for i, ch in enumerate(text):
        for c in _fold_char(ch):
            out.append(c)
            at.append(i)
    return "".join(out), at


def squash(text: str) -> str:
    """Lower case letters and digits only, folded: spelled-out, punctuated and look-alike forms
    become one string."""
    return "".join(ch for ch in fold(text).lower() if ch.isalnum())
