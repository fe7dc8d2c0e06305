"""Public link views kept in memory for a few seconds: every guest who opens a link reads one,
and a link that goes viral is read thousands of times a second.

An entry holds the serialized 200 body plus what decides 404/410 (expiry is checked against
the clock on every read). Changes that alter the public view (delete, the last use taken or
given back, a new link on a code looked up before, a host suspended) drop the entry here at
once and, through the hub's `links` channel, on every other instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from vidivo.core.hub import Event, Hub

CHANNEL = "links"
LINK_CHANGED = "link_changed"
MAX_ENTRIES = 50_000
log = logging.getLogger("vidivo.links.cache")


@dataclass(frozen=True, slots=True)
class PublicView:
    host_id: str | None
    body: bytes | None  # None: no usable link with this code (404)
    expires_at: datetime | None
    exhausted: bool
    stored_at: float


class PublicLinkCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, PublicView] = {}
        self._loading: dict[str, asyncio.Future[PublicView]] = {}
        self._changes = 0  # counts forgets: a load that saw one begin is not stored

    def get(self, code: str) -> PublicView | None:
        entry = self._entries.get(code)
        if entry is None or time.monotonic() - entry.stored_at > self._ttl:
            return None
        return entry

    async def get_or_load(self, code: str, load: Callable[[], Awaitable[PublicView]]) -> PublicView:
        """The cached view, or one load shared by every request that misses meanwhile.

        A viral link's entry expires under hundreds of concurrent readers; without sharing,
        each of them would query at once (and open overflow connections to do it), stalling
        every request on the instance for tens of milliseconds."""
        if (view := self.get(code)) is not None:
            return view
        if self._ttl <= 0:
            return await load()
        pending = self._loading.get(code)
        if pending is None:
            pending = asyncio.ensure_future(self._load(code, load, self._changes))
            self._loading[code] = pending
        # Shielded: a requester that goes away does not cancel the load for the others.
        return await asyncio.shield(pending)

    async def _load(
        self, code: str, load: Callable[[], Awaitable[PublicView]], changes: int
    ) -> PublicView:
        try:
            view = await load()
        finally:
            if self._loading.get(code) is asyncio.current_task():
                del self._loading[code]
        if changes == self._changes:  # else it may predate the change: do not keep it
            self.put(code, view)
        return view

    def put(self, code: str, view: PublicView) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # rare, and cheaper than tracking recency on every read
        self._entries[code] = view

    def forget(self, *, code: str | None = None, host_id: str | None = None) -> None:
        self._changes += 1
        if code is not None:
            self._entries.pop(code, None)
            self._loading.pop(code, None)
        if host_id is not None:
            for key in [k for k, v in self._entries.items() if v.host_id == host_id]:
                self._entries.pop(key, None)
            self._loading.clear()  # which codes belong to the host is known only once loaded

    async def changed(
        self, hub: Hub, *, code: str | None = None, host_id: str | None = None
    ) -> None:
        """A link's public view changed: drop it here now, and on every instance."""
        self.forget(code=code, host_id=host_id)
        await hub.publish(CHANNEL, link_changed_event(code=code, host_id=host_id))

    async def follow(self, hub: Hub) -> None:
        """Drop entries other instances (or workers, or the CLI) say have changed."""
        queue = await hub.subscribe(CHANNEL)
        try:
            while True:
                event = await queue.get()
                self.forget(code=event.get("code"), host_id=event.get("host_id"))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(hub.unsubscribe(CHANNEL, queue))


def link_changed_event(*, code: str | None = None, host_id: str | None = None) -> Event:
    return {"type": LINK_CHANGED, "code": code, "host_id": host_id}
