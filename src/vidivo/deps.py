"""Request dependencies shared by every domain: settings, clock, database, app context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vidivo.auth.tokens import KeyRing
from vidivo.calls.engine import BillingEngine
from vidivo.calls.worker import BillingWorker
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.db import unit_of_work
from vidivo.core.hub import Hub
from vidivo.core.pagination import CursorSigner
from vidivo.core.ratelimit import RateLimiter
from vidivo.links.lookup_guard import LookupGuard
from vidivo.links.public_cache import PublicLinkCache
from vidivo.mail.service import Mailer
from vidivo.payments.provider import PaymentProvider


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keys: KeyRing
    mailer: Mailer
    limiter: RateLimiter
    cursors: CursorSigner
    payments: PaymentProvider
    hub: Hub
    public_links: PublicLinkCache
    link_lookups: LookupGuard
    billing: BillingEngine
    worker: BillingWorker


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def get_db(context: Context) -> AsyncIterator[AsyncSession]:
    async for session in unit_of_work(context.session_factory):
        yield session


# scope="function": commit before the response is sent, so a 2xx means the data is stored.
DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]
