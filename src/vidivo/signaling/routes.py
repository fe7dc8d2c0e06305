"""Signaling: `/v1/sessions/{id}/signal` (presence, WebRTC relay, call events), the host's
`/v1/host/events` (incoming calls) and `/v1/sessions/{id}/ice-servers`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocketDisconnected

from vidivo.auth import availability
from vidivo.auth import service as auth
from vidivo.auth.deps import Caller, Tokens
from vidivo.auth.service import GuestPrincipal, Principal
from vidivo.auth.tokens import TokenAuthority
from vidivo.calls import access
from vidivo.calls import service as sessions
from vidivo.calls.deps import Billing, Calls, LoggedCallSession
from vidivo.calls.events import CallEvent, Paused, PeerJoined, PeerLeft, Resumed, WentLive
from vidivo.calls.models import FINAL_STATES, CallSession, SessionState
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.db import new_id
from vidivo.core.deps import AppClock, AppHub, AppSettings, DbSession, SessionFactory
from vidivo.core.errors import ApiError
from vidivo.core.hub import Hub
from vidivo.core.metrics import OPEN_WEBSOCKETS
from vidivo.core.schemas import error_responses
from vidivo.links.deps import PublicLinks
from vidivo.signaling.ice import IceServers, ice_servers_for

log = logging.getLogger("vidivo.signaling")
router = APIRouter(dependencies=[LoggedCallSession])

MAX_MESSAGE_BYTES = 64 * 1024
RELAYED_TYPES = {"offer", "answer", "ice", "hangup"}
CLOSE_BAD_MESSAGE = 4400
CLOSE_POLICY = 4403
CLOSE_IDLE = 4408
CLOSE_ENDED = 4410
CLOSE_TOO_MANY = 4429

# Per-socket message budget; kept in process memory: a socket lives on one instance.
_message_limiter = FixedWindowRateLimiter(MemoryStorage())


@router.get(
    "/v1/sessions/{session_id}/ice-servers",
    tags=["sessions"],
    responses=error_responses(401, 404, 409),
    summary="STUN/TURN servers for this call, with TURN credentials that end with its paid time",
)
async def ice_servers(
    session_id: str,
    caller: Caller,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
) -> IceServers:
    session = await access.get_for_party(db, session_id, caller)
    now = clock.now()
    not_after = await sessions.relay_deadline(db, session, now)
    return ice_servers_for(settings, session.id, now, not_after)


Factory = async_sessionmaker[AsyncSession]


async def _caller(
    factory: Factory, tokens: TokenAuthority, token: str | None
) -> Principal | GuestPrincipal | None:
    if not token:
        return None
    async with factory() as db:
        try:
            return await auth.authenticate_caller(db, tokens, token)
        except ApiError:
            return None


async def _role(
    factory: Factory, tokens: TokenAuthority, session_id: str, token: str | None
) -> str | None:
    caller = await _caller(factory, tokens, token)
    if caller is None:
        return None
    async with factory() as db:
        try:
            session = await access.get_for_party(db, session_id, caller)
        except ApiError:
            return None
        if session.state in FINAL_STATES:
            return None
    return "guest" if isinstance(caller, GuestPrincipal) else "host"


def _presence_event(before: str, session: CallSession) -> CallEvent | None:
    if session.state == SessionState.LIVE and before != SessionState.LIVE:
        return Resumed() if before == SessionState.PAUSED else WentLive()
    if session.state == SessionState.PAUSED and before == SessionState.LIVE:
        return Paused()
    return None


@router.websocket("/v1/sessions/{session_id}/signal")
async def signal(
    websocket: WebSocket,
    session_id: str,
    factory: SessionFactory,
    tokens: Tokens,
    calls: Calls,
    billing: Billing,
    hub: AppHub,
    settings: AppSettings,
) -> None:
    role = await _role(factory, tokens, session_id, websocket.query_params.get("token"))
    if role is None:
        await websocket.close(code=CLOSE_POLICY, reason="not a party to this call")
        return
    await websocket.accept()
    queue = await hub.subscribe(session_id)
    before, session = await calls.connected(session_id, role)
    await billing.advance(session_id)
    peer_connections = session.guest_connections if role == "host" else session.host_connections
    # Presence is recorded before the welcome: a client that got it counts as in the call.
    await websocket.send_json(
        {
            "type": "welcome",
            "role": role,
            "state": session.state,
            "peer_present": peer_connections > 0,
        }
    )
    await hub.publish(session_id, PeerJoined(role, session.state).message())
    if event := _presence_event(before, session):
        await hub.publish(session_id, event.message())
    sender = asyncio.create_task(_forward_events(websocket, queue, role))
    OPEN_WEBSOCKETS.labels("call").inc()
    try:
        await _receive_loop(websocket, hub, settings, session_id, role)
    except (WebSocketDisconnect, WebSocketDisconnected):
        # The peer went away, or our own event sender closed the socket (the call ended)
        # while this loop was answering a ping: either way the socket's life is over.
        pass
    finally:
        OPEN_WEBSOCKETS.labels("call").dec()
        sender.cancel()
        await hub.unsubscribe(session_id, queue)
        before, session = await calls.disconnected(session_id, role)
        await hub.publish(session_id, PeerLeft(role).message())
        if event := _presence_event(before, session):
            await hub.publish(session_id, event.message())
        await billing.advance(session_id)


async def _receive_loop(
    websocket: WebSocket, hub: Hub, settings: Settings, session_id: str, role: str
) -> None:
    read = MessageReader(websocket, settings)
    while (message := await read.next()) is not None:
        if message["type"] == "ping":
            await websocket.send_json({"type": "pong"})
        elif message["type"] in RELAYED_TYPES:
            await hub.publish(session_id, {**message, "from": role})
        else:
            await websocket.close(code=CLOSE_BAD_MESSAGE, reason="unknown message type")
            return


class MessageReader:
    """What every socket a client writes to is held to: a heartbeat at least every idle
    timeout, at most `signal_messages_per_second` messages, each a small JSON object with a
    `type`. A breach closes the socket with its code and `next()` answers None."""

    def __init__(self, websocket: WebSocket, settings: Settings) -> None:
        self.websocket = websocket
        self.idle_timeout = settings.signal_idle_timeout_seconds
        self.budget = RateLimitItemPerSecond(settings.signal_messages_per_second)
        self.socket_key = new_id()

    async def next(self) -> dict[str, Any] | None:
        try:
            # Clients ping every few seconds; silence this long means the peer is gone.
            raw = await asyncio.wait_for(self.websocket.receive_text(), timeout=self.idle_timeout)
        except TimeoutError:
            await self.websocket.close(code=CLOSE_IDLE, reason="no heartbeat")
            return None
        if not await _message_limiter.hit(self.budget, self.socket_key):
            await self.websocket.close(code=CLOSE_TOO_MANY, reason="too many messages")
            return None
        message = _parse(raw)
        if message is None:
            await self.websocket.close(code=CLOSE_BAD_MESSAGE, reason="bad message")
        return message


def _parse(raw: str) -> dict[str, Any] | None:
    if len(raw.encode()) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


async def _forward_events(websocket: WebSocket, queue: asyncio.Queue[Any], role: str) -> None:
    while True:
        event = await queue.get()
        if event.get("from") == role:
            continue  # a peer's own relay message does not echo back
        await websocket.send_json(event)
        if event.get("type") == "ended":
            await websocket.close(code=CLOSE_ENDED, reason="call ended")
            return


@router.websocket("/v1/host/events")
async def host_events(
    websocket: WebSocket,
    factory: SessionFactory,
    tokens: Tokens,
    hub: AppHub,
    settings: AppSettings,
    clock: AppClock,
    public_links: PublicLinks,
) -> None:
    """A signed-in host's live feed: incoming calls for the dashboard. While it is open the
    host is present (`available` to guests, unless away)."""
    caller = await _caller(factory, tokens, websocket.query_params.get("token"))
    if not isinstance(caller, Principal):
        await websocket.close(code=CLOSE_POLICY, reason="host sign-in required")
        return
    await websocket.accept()
    host_id = caller.user.id
    channel = f"host:{host_id}"
    queue = await hub.subscribe(channel)
    presence = DashboardPresence(factory, clock, settings, host_id)
    await presence.opened()
    await public_links.changed(hub, host_id=host_id)  # guests now see the host available
    sender = asyncio.create_task(_forward_events(websocket, queue, "host"))
    OPEN_WEBSOCKETS.labels("host_events").inc()
    read = MessageReader(websocket, settings)
    try:
        while (message := await read.next()) is not None:
            if message["type"] != "ping":
                await websocket.close(code=CLOSE_BAD_MESSAGE, reason="only ping is accepted")
                return
            await presence.heartbeat()
            await websocket.send_json({"type": "pong"})
    except (WebSocketDisconnect, WebSocketDisconnected):
        # The peer went away, or our own event sender closed the socket (the call ended)
        # while this loop was answering a ping: either way the socket's life is over.
        pass
    finally:
        OPEN_WEBSOCKETS.labels("host_events").dec()
        sender.cancel()
        await hub.unsubscribe(channel, queue)
        await presence.closed()
        await public_links.changed(hub, host_id=host_id)


class DashboardPresence:
    """The presence row of one host events socket: written on open, refreshed by the
    heartbeat (at most every half idle timeout), deleted on close."""

    def __init__(self, factory: Factory, clock: Clock, settings: Settings, host_id: str) -> None:
        self.factory = factory
        self.clock = clock
        self.host_id = host_id
        self.every = availability.refresh_interval(settings.signal_idle_timeout_seconds)
        self.dashboard_id = ""
        self.written = clock.now()

    async def opened(self) -> None:
        async with self.factory() as db:
            self.dashboard_id = await availability.dashboard_opened(db, self.host_id, self.written)
            await db.commit()

    async def heartbeat(self) -> None:
        now = self.clock.now()
        if now - self.written < self.every:
            return
        async with self.factory() as db:
            await availability.dashboard_seen(db, self.dashboard_id, now)
            await db.commit()
        self.written = now

    async def closed(self) -> None:
        async with self.factory() as db:
            await availability.dashboard_closed(db, self.dashboard_id)
            await db.commit()
