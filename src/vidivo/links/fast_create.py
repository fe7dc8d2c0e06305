"""Link creation without the framework: `POST /v1/links` in ONE statement.

The route (`links/routes.py`) is the reference. This ASGI layer answers only the plain
success case: a request without an `Idempotency-Key`, whose bearer token verifies in memory
and whose body the route's own model accepts. One `INSERT … SELECT … RETURNING`, with no
transaction of its own, writes the link only where the route would: the login exists and is
not revoked, its user is a verified host (`User.is_verified_host`) whose payouts can take
charges (`payouts.charges_enabled_clause`). The row's values come from
`service.new_link_values`, as on the route, and the answer is the route's, byte for byte.

When the statement writes nothing (a check failed, or the new short code was taken), or
anything fails before it answers, the request goes on to FastAPI untouched, which answers
as it always did: every refusal and every error keeps the route's exact answer
(`tests/links/test_create_fast_path.py`). Nothing is cached: a logout, a revocation or a
suspension stops the next request, exactly as on the route.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import cast

from pydantic import ValidationError
from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from vidivo.auth.models import LoginSession, User
from vidivo.auth.tokens import TokenAuthority
from vidivo.core.clock import Clock
from vidivo.core.db import DriverStatement, runs_driver_statements
from vidivo.core.errors import ApiError
from vidivo.core.hub import Hub
from vidivo.core.metrics import ROUTE_TEMPLATE_KEY
from vidivo.core.middleware import replaying
from vidivo.links import service
from vidivo.links.fast_common import bearer_login, send_json
from vidivo.links.models import Link
from vidivo.links.public_cache import PublicLinkCache
from vidivo.links.schemas import LinkCreate, LinkResponse
from vidivo.links.views import OwnerLinkFields, link_out
from vidivo.payouts.service import charges_enabled_clause

_ROUTE = "/v1/links"


class HostLinkCreateFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: AsyncEngine,
        tokens: TokenAuthority,
        clock: Clock,
        public_links: PublicLinkCache,
        hub: Hub,
        base_url: str,
    ) -> None:
        self.app = app
        self.engine = engine
        self.tokens = tokens
        self.clock = clock
        self.public_links = public_links
        self.hub = hub
        self.base_url = base_url
        self.statement = _statement(engine.dialect.name)
        # Past SQLAlchemy, on the driver's own connection: SQLAlchemy's execution was a
        # sixth of the request's CPU on PostgreSQL; on SQLite the lane also queues the writes
        # in order, where the pool's connections slept in SQLite's busy handler
        # (bench/HISTORY.md).
        self.driver_statement = (
            DriverStatement(engine, self.statement) if runs_driver_statements(engine) else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # RequestBodyPolicy (outside this layer) has read the whole body: one message.
        message = await receive()
        link = None
        if message["type"] == "http.request" and not message.get("more_body", False):
            try:
                link = await self._create(scope, message.get("body", b""))
            except Exception:  # nothing was written: the route answers, as it always did
                link = None
        if link is None:
            await self.app(scope, replaying(message, receive), send)
            return
        # A lookup of this code before it existed may have been cached as a 404.
        await self.public_links.changed(self.hub, code=link.short_code)
        scope[ROUTE_TEMPLATE_KEY] = _ROUTE  # the route this layer stands in for
        body = LinkResponse(link=link_out(self.base_url, link)).model_dump_json().encode()
        await send_json(send, 201, body)

    async def _create(self, scope: Scope, raw: bytes) -> OwnerLinkFields | None:
        if any(name == b"idempotency-key" for name, _ in scope["headers"]):
            return None  # the route keeps the stored answer
        login = bearer_login(scope, self.tokens)
        if login is None or not raw:
            return None
        session_id, user_id = login
        try:
            body = LinkCreate.model_validate(json.loads(raw))  # as FastAPI reads a body
            now = self.clock.now()
            service.validate_times(body, now)
        except (ValueError, ValidationError, ApiError):
            return None
        values = service.new_link_values(user_id, body, now)
        params = {**values, "sid": session_id}
        if self.driver_statement is not None:
            written = await self.driver_statement.scalar(params)
        else:
            async with self.engine.connect() as connection:
                # Autocommit: one statement needs no BEGIN/COMMIT round trips of its own.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                written = await connection.scalar(self.statement, params)
        if written is None:
            return None
        # The row as written, every column (`new_link_values`): an ORM entity would cost
        # ~30 µs more to build, for an answer that only reads it.
        return cast(OwnerLinkFields, SimpleNamespace(**values))


def _statement(dialect: str) -> Insert:
    """The link's row, inserted only for a live login of a verified host whose payouts can
    take charges; nothing when any of that fails or the short code is taken."""
    columns = list(Link.__table__.columns)
    values = [bindparam(column.key, type_=column.type) for column in columns]
    caller = (
        select(*values)
        .select_from(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.id == bindparam("sid"),
            User.id == bindparam("host_id"),
            LoginSession.revoked_at.is_(None),
            User.is_verified_host,
            charges_enabled_clause(User.id),
        )
    )
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(Link)
        .from_select([column.key for column in columns], caller)
        .on_conflict_do_nothing(index_elements=[Link.short_code])
        .returning(Link.id)
    )
