"""Whose turn it is when the suite runs in several processes (pytest-xdist, `-n`).

Most tests run side by side. A few start several processes of the app and run their time
20× faster than real, or stop PostgreSQL for a while: each of those runs with no other test
beside it. Between the worker processes this is a readers-writer lock on two files (`flock`):
a test that runs alone holds the second one exclusively; the others share it. Both first
pass through the first file, a turnstile, which a test waiting to run alone keeps closed, so
a stream of short tests cannot keep it waiting for ever.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class Turns:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._turnstile: IO[bytes] = (folder / "turnstile.lock").open("ab")
        self._machine: IO[bytes] = (folder / "machine.lock").open("ab")

    @classmethod
    def of_this_run(cls) -> Turns | None:
        """The turns shared by this run's worker processes; None outside pytest-xdist."""
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        if not run:
            return None
        return cls(Path(tempfile.gettempdir()) / f"vidivo-tests-{run}")

    @contextmanager
    def alone(self) -> Iterator[None]:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._machine, fcntl.LOCK_EX)  # waits for the tests running now
            try:
                yield
            finally:
                fcntl.flock(self._machine, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    @contextmanager
    def beside_others(self) -> Iterator[None]:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)  # closed while a test waits to run alone
        try:
            fcntl.flock(self._machine, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._machine, fcntl.LOCK_UN)
