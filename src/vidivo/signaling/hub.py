"""Session events fan-out to connected peers (in process; Redis pub/sub across instances)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

Event = dict[str, Any]
QUEUE_LIMIT = 256


class LocalHub:
    """Subscribers per session; a slow subscriber loses old events rather than blocking."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def subscribe(self, session_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._subscribers[session_id].add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[Event]) -> None:
        subscribers = self._subscribers.get(session_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[session_id]

    async def publish(self, session_id: str, event: Event) -> None:
        for queue in list(self._subscribers.get(session_id, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
