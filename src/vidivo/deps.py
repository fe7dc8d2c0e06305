"""The whole app context as one dependency, for the domains not yet asking for what they use.

New code asks for single objects through `vidivo.core.deps` (`DbSession`, `AppClock`,
`provided(...)`); `DbSession` is the same dependency here and there, so a request that mixes
both still has one unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vidivo.auth.tokens import KeyRing, TokenAuthority
from vidivo.calls.engine import BillingEngine
from vidivo.calls.worker import BillingWorker
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.deps import DbSession, get_db
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
    tokens: TokenAuthority
    mailer: Mailer
    limiter: RateLimiter
    cursors: CursorSigner
    payments: PaymentProvider
    hub: Hub
    public_links: PublicLinkCache
    link_lookups: LookupGuard
    billing: BillingEngine
    worker: BillingWorker


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


__all__ = ["AppContext", "Context", "DbSession", "get_context", "get_db"]
