"""Short-code enumeration: an address that keeps asking for codes that do not exist gets
`429` + `Retry-After` for a while, on every lookup (hits too), instead of more answers.

Every route that takes a short code looks it up through `lookup`, whoever asks (with a token
or without): the public view, the owner's view, the guest page, starting a call.

Misses are counted with the shared rate limiter (Redis when configured, so the count spans
instances); the block itself is remembered in process, so a lookup of a cached link costs no
round trip at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vidivo.core.errors import NotFound, RateLimited
from vidivo.core.ratelimit import RateLimiter, per_seconds

T = TypeVar("T")


class LookupGuard:
    def __init__(self, limiter: RateLimiter, misses_per_minute: int) -> None:
        self._limiter = limiter
        self._item = per_seconds(misses_per_minute, 60)
        self._blocked_until: dict[str, float] = {}

    async def lookup(self, address: str, find: Callable[[], Awaitable[T]]) -> T:
        """`find()`'s answer; its 404 counted as a miss (a 429 once too many), and nothing at
        all looked up for an address that is blocked."""
        if refused := self.refusal(address):
            raise refused
        try:
            return await find()
        except NotFound:
            if refused := await self.missed(address):
                raise refused from None
            raise

    def refusal(self, address: str) -> RateLimited | None:
        """The 429 for an address that is blocked now, else None."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return None
        return _refused(math.ceil(left))

    async def missed(self, address: str) -> RateLimited | None:
        """Count a lookup of a code that does not exist; the 429 once there were too many."""
        try:
            await self._limiter.hit(self._item, "link-miss", address)
        except RateLimited as refused:
            retry_after = int(refused.headers["Retry-After"])
            self._blocked_until[address] = time.monotonic() + retry_after
            return _refused(retry_after)
        return None


def _refused(retry_after: int) -> RateLimited:
    return RateLimited(retry_after, "Too many lookups of unknown call links; try again later.")
