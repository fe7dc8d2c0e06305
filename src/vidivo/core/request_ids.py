"""Every request gets an id: the caller's `X-Request-Id` when it is a sane token, a new ULID
otherwise. It is returned on every response and carried by every log line of the request."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from vidivo.core.logs import call_session_id, request_id

REQUEST_ID_HEADER = b"x-request-id"
# A proxy's or client's id is kept for tracing across services, but it lands in every log
# line: short and of plain characters only, so it can neither flood nor forge log lines.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def _request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.fullmatch(value):
            return bytes(value).decode("ascii")
    return str(ULID())


class RequestIds:
    """Pure ASGI, outermost: even the server's own error responses carry the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        current = _request_id_of(scope)
        header = (REQUEST_ID_HEADER, current.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        request_token = request_id.set(current)
        session_token = call_session_id.set(None)  # a call route names its own
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            call_session_id.reset(session_token)
            request_id.reset(request_token)
