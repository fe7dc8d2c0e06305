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
        self.storage = storage or MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)

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

    async def reached(self, item: RateLimitItem, *keys: str) -> bool:
        """Whether the limit is already reached (nothing counted)."""
        return not await self._limiter.test(item, *keys)


class Backoff:
    """Failures per key with a doubling wait: after the `free`-th failure the key is refused
    for `base` seconds, after the next for twice that, and so on up to `longest`. A failure
    count is forgotten `memory` seconds after its first failure, or on `succeeded`.

    Counts and waits live in the rate limiter's storage (Redis when configured), so every
    instance sees them; each failure count has its own wait key, so concurrent failures never
    shorten a wait another one set.
    """

    def __init__(self, storage: Storage, *, base: int, longest: int, memory: int) -> None:
        self._storage, self._base, self._longest, self._memory = storage, base, longest, memory

    @staticmethod
    def _count_key(key: str) -> str:
        return f"backoff/{key}/failures"

    async def _wait_key(self, key: str) -> str:
        return f"backoff/{key}/wait/{await self._storage.get(self._count_key(key))}"

    async def check(self, key: str, message: str | None = None) -> None:
        """Refuse (429 + Retry-After) while `key` is waiting out its last failure."""
        wait_key = await self._wait_key(key)
        if await self._storage.get(wait_key):
            left = await self._storage.get_expiry(wait_key) - time.time()
            raise RateLimited(math.ceil(left), message)

    async def failed(self, key: str, *, free: int) -> None:
        failures = await self._storage.incr(self._count_key(key), self._memory)
        if failures >= free:
            wait = min(self._longest, self._base * 2 ** min(failures - free, 32))
            wait_key = await self._wait_key(key)
            await self._storage.clear(wait_key)  # one left from before a success restarts
            await self._storage.incr(wait_key, wait)

    async def succeeded(self, key: str) -> None:
        await self._storage.clear(self._count_key(key))
