"""The public link view without the framework: every guest opening a link comes here.

`GET /v1/links/{short_code}` without credentials is answered by this small ASGI layer from
the in-memory public view cache (one indexed SELECT on a miss); everything else, including
the owner's authenticated view, goes on to FastAPI. The answer is byte-for-byte the route's.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from vidivo.core.client_address import client_address
from vidivo.core.clock import Clock
from vidivo.core.errors import ApiError, error_response, unexpected_error
from vidivo.core.metrics import ROUTE_TEMPLATE_KEY
from vidivo.links import service
from vidivo.links.fast_common import send_json
from vidivo.links.lookup_guard import LookupGuard
from vidivo.links.public_cache import PublicLinkCache

_PUBLIC_LINK = re.compile(r"^/v1/links/([^/]+)$")


class PublicLinkFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: AsyncEngine,
        cache: PublicLinkCache,
        guard: LookupGuard,
        clock: Clock,
        base_url: str,
        presence_timeout: timedelta,
    ) -> None:
        self.app = app
        self.engine = engine
        self.cache = cache
        self.guard = guard
        self.clock = clock
        self.base_url = base_url
        self.presence_timeout = presence_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PUBLIC_LINK.match(scope["path"]) if scope["type"] == "http" else None
        if (
            match is None
            or scope["method"] != "GET"
            or any(name == b"authorization" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        scope[ROUTE_TEMPLATE_KEY] = "/v1/links/{short_code}"  # the route this layer stands in for
        try:
            body = await self.guard.lookup(
                client_address(scope),
                lambda: service.public_view_body(
                    self.engine,
                    self.cache,
                    self.clock,
                    self.base_url,
                    match.group(1),
                    self.presence_timeout,
                ),
            )
        except ApiError as other:
            await error_response(other)(scope, receive, send)
            return
        except Exception as exc:  # outside FastAPI's handlers: answer in the API's shape
            await error_response(unexpected_error(exc))(scope, receive, send)
            return
        await send_json(send, 200, body)
