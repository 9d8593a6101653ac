"""Identifiers and fingerprints in OpenAI's shapes (chatcmpl-..., cmpl-..., fp_...)."""

from __future__ import annotations

import hashlib
import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 29            # OpenAI's chatcmpl ids carry 29 random characters


def new_id(prefix: str, length: int = ID_LENGTH) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


def fingerprint(*parts: str) -> str:
    """Changes when the snapshot or the engine build changes, as OpenAI's system_fingerprint does."""
    return "fp_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:10]
