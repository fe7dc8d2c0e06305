"""Request dependencies every domain may use: the unit of work, and one object at a time from
the composition root.

`app.py` builds the object graph once and registers each object in `app.state.provided`,
keyed by its type (the Protocol for a Protocol: `Clock`, `Hub`, `PaymentProvider`). A route
asks for exactly what it uses, `clock: AppClock`, never for the whole graph. Aliases for
core types live here; a domain declares its own next to its routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.db import unit_of_work
from vidivo.core.hub import Hub
from vidivo.core.pagination import CursorSigner
from vidivo.core.ratelimit import RateLimiter

Provided = dict[type[Any], object]
"""What the composition root built, by type: `app.state.provided`."""


Reader = Callable[[HTTPConnection], Awaitable[Any]]
# One callable per type, whoever asks: FastAPI then resolves each object once per request.
_readers: dict[type[Any], Reader] = {}


def _reader(kind: type[Any]) -> Reader:
    if (known := _readers.get(kind)) is not None:
        return known

    # `async def`: a plain `def` dependency would hop through the thread pool on every request.
    async def read(connection: HTTPConnection) -> Any:
        return connection.app.state.provided[kind]

    read.__name__ = read.__qualname__ = f"provided_{kind.__name__}"
    return _readers.setdefault(kind, read)


def provided(kind: type[Any]) -> Any:
    """`Depends` on the one `kind` object the app was built with (HTTP and WebSocket)."""
    return Depends(_reader(kind))


AppSettings = Annotated[Settings, provided(Settings)]
AppClock = Annotated[Clock, provided(Clock)]
AppHub = Annotated[Hub, provided(Hub)]
DbEngine = Annotated[AsyncEngine, provided(AsyncEngine)]
SessionFactory = Annotated[async_sessionmaker[AsyncSession], provided(async_sessionmaker)]
Cursors = Annotated[CursorSigner, provided(CursorSigner)]
Limiter = Annotated[RateLimiter, provided(RateLimiter)]


async def get_db(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    async for session in unit_of_work(factory):
        yield session


# scope="function": commit before the response is sent, so a 2xx means the data is stored.
DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]
