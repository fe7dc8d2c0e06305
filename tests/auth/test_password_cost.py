"""Passwords are stored as Argon2id hashes at RFC 9106's cost, by the app as it runs (the
suite's own process hashes at the cheapest parameters: tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import argon2

HASH_ONE = (
    "import asyncio\n"
    "from vidivo.auth.passwords import hash_password\n"
    "print(asyncio.run(hash_password('correct horse battery')))\n"
)


def test_the_app_hashes_passwords_with_argon2id_at_rfc_9106_cost():
    stored = subprocess.run(
        [sys.executable, "-c", HASH_ONE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    parameters = argon2.extract_parameters(stored)
    assert parameters.type is argon2.Type.ID
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (3, 65536, 4)
    assert argon2.PasswordHasher().verify(stored, "correct horse battery")
