"""Short codes: random, URL-safe, lowercase, and too many to enumerate."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_lowercase + string.digits
# 36^10 ≈ 3.7e15 codes: with a million live links a guesser needs ~3.7e9 tries per hit,
# far beyond what the per-client rate limit on lookups lets through.
LENGTH = 10


def new_short_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def looks_like_short_code(text: str) -> bool:
    return 1 <= len(text) <= 32 and all(c in ALPHABET for c in text)
