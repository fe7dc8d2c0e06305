"""The links domain's objects, as the composition root built them."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import Depends, Request

from vidivo.auth.availability import presence_timeout
from vidivo.core.client_address import client_address
from vidivo.core.deps import AppClock, AppSettings, DbEngine, provided
from vidivo.links import service
from vidivo.links.lookup_guard import LookupGuard
from vidivo.links.public_cache import PublicLinkCache

PublicLinks = Annotated[PublicLinkCache, provided(PublicLinkCache)]
LinkLookups = Annotated[LookupGuard, provided(LookupGuard)]


async def known_short_code(
    short_code: str,
    request: Request,
    lookups: LinkLookups,
    engine: DbEngine,
    public_links: PublicLinks,
    clock: AppClock,
    settings: AppSettings,
) -> str:
    """A short code that exists, looked up (and a miss counted) before the request's body is
    validated: otherwise a guessed code with a bad body would answer 400 if it is live and 404
    if not, an uncounted oracle."""

    async def find() -> None:
        # An expired or used-up link exists: the route gives its 410 once the request is valid.
        with contextlib.suppress(service.LinkExpired, service.LinkExhausted):
            await service.public_view_body(
                engine,
                public_links,
                clock,
                settings.public_base_url,
                short_code,
                presence_timeout(settings.signal_idle_timeout_seconds),
            )

    await lookups.lookup(client_address(request.scope), find)
    return short_code


KnownShortCode = Annotated[str, Depends(known_short_code)]
