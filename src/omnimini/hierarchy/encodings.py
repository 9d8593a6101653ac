"""The encodings an answer can hide a secret in, for the output guard (guard.py).

Two kinds, by how they can be found:
- encodings of the answer's text that can be decoded wherever they appear: base64, base32, hex and
  runs of numbers (ASCII codes, letter positions A=1..Z=26), 8-bit binary, Morse code (`decoded`);
  and rot13 of the whole answer;
- letter-for-letter ciphers, which can be applied to the secret instead and looked for in the answer
  like the secret itself: every Caesar shift and Atbash (`cipher_forms`).

These are the encodings extraction games (Gandalf, Tensor Trust) and jailbreak collections ask for:
"spell it in Morse", "give me each letter's position in the alphabet", "shift each letter by 3",
"the ASCII codes please". Each decoder only turns runs that look like its encoding into text; the
guard then looks for protected text in that text as in the answer.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import string

_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_B32_RUN = re.compile(r"[A-Z2-7]{8,}={0,6}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}[\s:,]?){4,}")
# Runs of at least four numbers of up to three digits between separators ("16-15-18-3", "80, 79, 82").
_NUMBER_RUN = re.compile(r"\b\d{1,3}(?:[\s,;.\-/|]+\d{1,3}\b){3,}")
_BINARY_RUN = re.compile(r"\b[01]{7,8}(?:[\s,;|]+[01]{7,8}\b){2,}")
# Morse: dots and dashes (and their look-alikes) in groups; letters split by spaces, words by / or |.
_MORSE_SIGNS = str.maketrans({"·": ".", "•": ".", "∙": ".", "−": "-", "–": "-", "—": "-", "_": "-"})
_MORSE_RUN = re.compile(r"(?:[.\-·•∙−–—_]{1,6}(?:[ \t]*[/|][ \t]*|[ \t]+|$)){3,}")
MORSE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h",
    "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p",
    "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x",
    "-.--": "y", "--..": "z", "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4",
    ".....": "5", "-....": "6", "--...": "7", "---..": "8", "----.": "9",
}
# Escape prefixes and wrappers of character codes, removed so that the codes read as hex or number
# runs: 0x50, \x50, \u0050, U+0050, %50, &#x50; and &#80; (HTML), chr(80) and String.fromCharCode.
_ESCAPE = re.compile(r"0[xX](?=[0-9a-fA-F])|\\[xX](?=[0-9a-fA-F])|\\u00(?=[0-9a-fA-F]{2})|[uU]\+00(?=[0-9a-fA-F]{2})|"
                     r"%(?=[0-9a-fA-F]{2})|&#[xX]?|(?<=[0-9a-fA-F]);|\bchr\(|\)\s*\+\s*|\)")
# An encoding in progress at the end of a streamed text (guard.hold_from holds it back while it grows):
# the base64/base32 alphabet, hex pairs, numbers between separators, binary, Morse signs.
ENCODED_TAILS = (
    re.compile(r"[A-Za-z0-9+/_=-]+$"),
    re.compile(r"[0-9a-fA-F][0-9a-fA-F\s:]*$"),
    re.compile(r"\d[\d\s,;.\-/|]*$"),
    re.compile(r"[.\-·•∙−–—_][.\-·•∙−–—_\s/|]*$"),
    re.compile(r"(?:(?:0[xX]|\\[xXu]?|%|&#?[xX]?|[uU]\+|chr\(?)[0-9a-fA-F]*[;)]?[\s,;+]*)+$"),   # escaped codes
)
# A cipher of a short secret is a short random-looking string: 25 shifts of a 4-letter secret would
# turn up in ordinary text, so ciphers are checked only for secrets with this many letters.
MIN_CIPHER_LETTERS = 6
_LOWER = string.ascii_lowercase


def cipher_forms(secret: str) -> list[str]:
    """A squashed secret under every Caesar shift (1..25; rot13 is one) and Atbash: with its digits
    as they are, with its digits shifted too (mod 10, as many "shift by 3" answers do), and its
    letters alone."""
    letters = "".join(c for c in secret if c in _LOWER)
    if len(letters) < MIN_CIPHER_LETTERS:
        return []
    tables = [str.maketrans(_LOWER, _LOWER[k:] + _LOWER[:k]) for k in range(1, 26)]
    digit_tables = [str.maketrans(string.digits, string.digits[k % 10:] + string.digits[:k % 10]) for k in range(1, 26)]
    forms = []
    for table, digits in zip(tables, digit_tables):
        forms += [secret.translate(table), secret.translate(table).translate(digits), letters.translate(table)]
    atbash = str.maketrans(_LOWER, _LOWER[::-1])
    forms += [secret.translate(atbash), letters.translate(atbash)]
    return sorted({f for f in forms if f not in (secret, letters)}, key=len, reverse=True)


def decoded(text: str) -> list[str]:
    """Texts hidden in the answer: rot13 of the whole, and each run of an encoding decoded; the
    escapes of programming languages and the web ("0x50", "\\x50", "\\u0050", "%50", "&#80;",
    "&#x50;", "chr(80)") read as the hex or decimal codes they write."""
    out = [codecs.decode(text, "rot13")]
    unescaped = _ESCAPE.sub(lambda m: " " if m.group() == ";" or m.group().startswith(")") else "", text)
    if unescaped != text:
        out += _runs(unescaped)
    return [t for t in out + _runs(text) if t.strip()]


def _runs(text: str) -> list[str]:
    out = []
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
            out.append(bytes.fromhex(re.sub(r"[\s:,]", "", run)).decode("utf-8", "ignore"))
        except ValueError:
            pass
    for m in _NUMBER_RUN.finditer(text):
        numbers = [int(n) for n in re.findall(r"\d+", m.group())]
        out.append("".join(_LOWER[n - 1] if 1 <= n <= 26 else " " for n in numbers))       # A=1 .. Z=26
        out.append("".join(chr(n) if 32 <= n <= 126 else " " for n in numbers))              # ASCII codes
    for m in _BINARY_RUN.finditer(text):
        out.append("".join(chr(int(b, 2)) for b in re.findall(r"[01]{7,8}", m.group()) if 32 <= int(b, 2) <= 126))
    for m in _MORSE_RUN.finditer(text):
        out.append(_morse(m.group()))
    return out


def _morse(run: str) -> str:
    words = re.split(r"[ \t]*[/|][ \t]*|[ \t]{2,}", run.translate(_MORSE_SIGNS).strip())
    return " ".join("".join(MORSE.get(sign, "") for sign in word.split()) for word in words)
