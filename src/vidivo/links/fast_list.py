"""A host's own links without the framework: `GET /v1/links`, the dashboard's hot listing.

The route (`links/routes.py`) is the reference. This ASGI layer answers only the plain
success case, with ONE statement and no transaction: the bearer token is verified in
memory as the route does, then a single SELECT reads the login session and its user (the
same checks as every authenticated request: the login not revoked, the account not
suspended, a host) together with the page of links. Nothing is cached: a logout, a
revocation or a suspension stops the next request, exactly as on the route.

Anything else goes on to FastAPI untouched, which answers as it always did: no or another
kind of token, a token or login that fails any check, a caller who is not a host, query
parameters in any form but the plain one (`limit` as digits, `active` as `true`/`false`, at
most one `cursor`), a cursor that does not decode for this host, an error reading the
database. So every refusal and every error keeps the route's exact answer; the success
body is the route's, byte for byte (`tests/links/test_list_fast_path.py`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Boolean, Select, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from vidivo.auth.models import LoginSession, Role, User
from vidivo.auth.tokens import TokenAuthority
from vidivo.core.db import DriverStatement, runs_driver_statements
from vidivo.core.metrics import ROUTE_TEMPLATE_KEY
from vidivo.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorSigner
from vidivo.links.fast_common import bearer_login, send_json
from vidivo.links.models import Link
from vidivo.links.schemas import LinkListResponse
from vidivo.links.views import summary_fields

_LIMIT = re.compile(r"^[1-9][0-9]{0,2}$")
_ACTIVE = {"true": True, "false": False}
_LINK_COLUMNS = [
    Link.id,
    Link.short_code,
    Link.rate_cents,
    Link.window_size_minutes,
    Link.expires_at,
    Link.max_uses,
    Link.use_count,
    Link.label,
    Link.is_active,
    Link.created_at,
]


def _plain_query(raw: bytes) -> tuple[int, str | None, bool | None] | None:
    """(limit, cursor, active) when the query string is in the plain form; None otherwise."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name in seen or name not in ("limit", "cursor", "active"):
            return None
        seen[name] = value
    limit = DEFAULT_LIMIT
    if "limit" in seen:
        if not _LIMIT.match(seen["limit"]) or int(seen["limit"]) > MAX_LIMIT:
            return None
        limit = int(seen["limit"])
    cursor = seen.get("cursor")
    if cursor is not None and not 0 < len(cursor) <= 1024:
        return None
    active = None
    if "active" in seen:
        if seen["active"] not in _ACTIVE:
            return None
        active = _ACTIVE[seen["active"]]
    return limit, cursor, active


class HostLinkListFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: AsyncEngine,
        tokens: TokenAuthority,
        cursors: CursorSigner,
        base_url: str,
    ) -> None:
        self.app = app
        self.engine = engine
        self.tokens = tokens
        self.cursors = cursors
        self.base_url = base_url
        # Past SQLAlchemy, on the driver's own connection: SQLAlchemy's execution and row
        # processing were a fifth of the request's CPU on PostgreSQL, and on SQLite its
        # steps each a hop to the connection's thread (bench/HISTORY.md).
        self.driver_statements = (
            {shape: DriverStatement(engine, statement) for shape, statement in _STATEMENTS.items()}
            if runs_driver_statements(engine)
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = None
        if scope["type"] == "http" and scope["path"] == "/v1/links" and scope["method"] == "GET":
            try:
                body = await self._answer(scope)
            except Exception:  # the route answers, as it always did (errors in its shape)
                body = None
        if body is None:
            await self.app(scope, receive, send)
            return
        scope[ROUTE_TEMPLATE_KEY] = "/v1/links"  # the route this layer stands in for
        await send_json(send, 200, body)

    async def _answer(self, scope: Scope) -> bytes | None:
        query = _plain_query(scope.get("query_string", b""))
        login = bearer_login(scope, self.tokens)
        if query is None or login is None:
            return None
        limit, cursor, active = query
        session_id, user_id = login
        after = None
        if cursor is not None:
            position = self.cursors.decode(cursor, expect_keys={"h", "id"})  # raises: declined
            if position["h"] != user_id or not isinstance(position["id"], str):
                return None
            after = position["id"]
        rows = await self._read(session_id, user_id, limit, after, active)
        if not rows:
            return None  # no such login for this user: the route says why
        first = rows[0]
        if first.revoked_at is not None or first.suspended_at is not None:
            return None
        if first.role != Role.HOST:
            return None
        links = [row for row in rows if row.id is not None]
        has_more = len(links) > limit
        links = links[:limit]
        next_cursor = (
            self.cursors.encode({"h": user_id, "id": str(links[-1].id)}) if has_more else None
        )
        # One validation of the whole page (in pydantic-core), not one model per link.
        response = LinkListResponse.model_validate(
            {
                "links": [summary_fields(self.base_url, link) for link in links],
                "pagination": {"cursor": next_cursor, "has_more": has_more, "limit": limit},
            }
        )
        return response.model_dump_json().encode()

    async def _read(
        self, session_id: str, user_id: str, limit: int, after: str | None, active: bool | None
    ) -> list[Any]:
        shape = (after is not None, active is not None)
        values: dict[str, Any] = {"sid": session_id, "uid": user_id, "n": limit + 1}
        if after is not None:
            values["after"] = after
        if active is not None:
            values["active"] = active
        if self.driver_statements is not None:
            return await self.driver_statements[shape].all(values)
        # Autocommit: one statement needs no BEGIN/COMMIT round trips of its own.
        async with self.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            return list((await connection.execute(_STATEMENTS[shape], values)).all())


def _statement(after: bool, active: bool) -> Select[Any]:
    """The login, its user and a page of the user's links, newest first: one SELECT."""
    page = select(*_LINK_COLUMNS).where(Link.host_id == bindparam("uid"))
    if after:
        page = page.where(Link.id < bindparam("after"))
    if active:
        page = page.where(Link.is_active == bindparam("active", type_=Boolean))  # NOT NULL
    page_sq = page.order_by(Link.id.desc()).limit(bindparam("n")).subquery("page")
    return (
        select(
            User.role,
            User.suspended_at,
            LoginSession.revoked_at,
            *(page_sq.c[column.key] for column in _LINK_COLUMNS),
        )
        .select_from(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .outerjoin(page_sq, true())
        .where(LoginSession.id == bindparam("sid"), User.id == bindparam("uid"))
        .order_by(page_sq.c.id.desc())
    )


# Built once: per request only the values change (and SQLAlchemy's compiled cache hits).
_STATEMENTS = {(after, active): _statement(after, active) for after in (False, True)
               for active in (False, True)}  # fmt: skip
