"""Work made again when another writer changed its row first.

A row with a version column is written only if its version is still the one read; otherwise
the ORM raises `StaleDataError` at the flush and nothing of the work's transaction is kept.
The work is then read and decided again on the row as it is now. Past a few lost races the
caller is told to try again (409) rather than wait on a row that never settles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.orm.exc import StaleDataError

from vidivo.core.errors import Conflict

T = TypeVar("T")

# Each lost race means another writer got through: five in a row is a row that is busy, not
# a bug, and a person waits on the answer.
ATTEMPTS = 5


async def made_again_on_lost_race(work: Callable[[], Awaitable[T]], gave_up: str) -> T:
    """`work()` (its own read, change and commit) until it is not raced, at most `ATTEMPTS`
    times; then a 409 `conflict` saying `gave_up`."""
    for _ in range(ATTEMPTS):
        try:
            return await work()
        except StaleDataError:
            continue
    raise Conflict(gave_up)
