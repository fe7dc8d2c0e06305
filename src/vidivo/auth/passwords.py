"""Argon2id password hashing, off the event loop (a hash costs tens of milliseconds)."""

from __future__ import annotations

import secrets

from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id with RFC 9106 parameters
# Verified against when the email is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("vidivo-timing-equaliser")


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await to_thread.run_sync(_verify)


def random_password() -> str:
    """A password an administrator hands out once (96 random bits, 16 URL-safe characters)."""
    return secrets.token_urlsafe(12)
