"""Rate limits on top of the `limits` library, answered as `429 rate_limited` + `Retry-After`."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from vidivo.core.errors import RateLimited


def per_seconds(amount: int, seconds: int) -> RateLimitItem:
    return RateLimitItemPerSecond(amount, seconds)


class RateLimiter:
    def __init__(self, storage: Storage | None = None) -> None:
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        stats = await self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, item: RateLimitItem, *keys: str, message: str | None = None) -> None:
        """Count one request; refuse it once the limit is reached."""
        if not await self._limiter.hit(item, *keys):
            raise RateLimited(await self._retry_after(item, *keys), message)

    async def check(self, item: RateLimitItem, *keys: str, message: str | None = None) -> None:
        """Refuse when the limit is already reached, without counting this request."""
        if not await self._limiter.test(item, *keys):
            raise RateLimited(await self._retry_after(item, *keys), message)

    async def record(self, item: RateLimitItem, *keys: str) -> None:
        await self._limiter.hit(item, *keys)
