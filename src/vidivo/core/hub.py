"""Session and host events fanned out to connected sockets.

`LocalHub` delivers inside one process (the embedded default). `RedisHub` publishes through
Redis pub/sub, so a peer on one API instance hears the other peer on another; each instance
subscribes only to the channels its own sockets listen on. When Redis cannot be reached,
`RedisHub` keeps working as a local hub (peers on the same instance still hear each other)
and logs the degradation, instead of failing calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any, Protocol

import orjson
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from vidivo.core.metrics import HUB_PUBLISH_FAILURES

Event = dict[str, Any]
QUEUE_LIMIT = 256
log = logging.getLogger("vidivo.hub")


class Hub(Protocol):
    async def subscribe(self, channel: str) -> asyncio.Queue[Event]: ...

    async def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None: ...

    async def publish(self, channel: str, event: Event) -> None: ...

    async def close(self) -> None: ...


class LocalHub:
    """Subscribers per channel; a slow subscriber loses old events rather than blocking."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def has_subscribers(self, channel: str) -> bool:
        return bool(self._subscribers.get(channel))

    async def subscribe(self, channel: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._subscribers[channel].add(queue)
        return queue

    async def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[channel]

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver(channel, event)

    def deliver(self, channel: str, event: Event) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def close(self) -> None:
        self._subscribers.clear()


class RedisHub:
    """Redis pub/sub across instances; local delivery happens when Redis echoes a message."""

    PREFIX = "vidivo:events:"

    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._local = LocalHub()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            # A subscription first: listening on a pubsub without one returns at once.
            await self._pubsub.subscribe(f"{self.PREFIX}__instance__")
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as error:
                log.warning("redis pub/sub read failed (%s); retrying", error)
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode().removeprefix(self.PREFIX)
            try:
                event = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            self._local.deliver(channel, event)

    async def subscribe(self, channel: str) -> asyncio.Queue[Event]:
        async with self._lock:
            first = not self._local.has_subscribers(channel)
            queue = await self._local.subscribe(channel)
            if first:
                try:
                    await self._ensure_reader()
                    await self._pubsub.subscribe(self.PREFIX + channel)
                except (RedisError, OSError) as error:
                    log.warning("redis unavailable, %s is local only: %s", channel, error)
        return queue

    async def unsubscribe(self, channel: str, queue: asyncio.Queue[Event]) -> None:
        async with self._lock:
            await self._local.unsubscribe(channel, queue)
            if not self._local.has_subscribers(channel):
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self.PREFIX + channel)

    async def publish(self, channel: str, event: Event) -> None:
        try:
            await self._redis.publish(self.PREFIX + channel, orjson.dumps(event))
        except (RedisError, OSError) as error:
            # Degraded: peers on this instance still hear each other.
            HUB_PUBLISH_FAILURES.inc()
            log.warning("redis publish failed (%s); delivering locally only", error)
            self._local.deliver(channel, event)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            await self._redis.aclose()
