"""The composition root's objects reach routes one at a time, by type, over HTTP and WebSocket."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, WebSocket

from tests.conftest import START
from vidivo.core.clock import Clock, TestClock
from vidivo.core.deps import AppClock, provided


def _app() -> FastAPI:
    app = FastAPI()
    app.state.provided = {Clock: TestClock(START)}

    @app.get("/now")
    async def now(clock: AppClock) -> str:
        return clock.now().isoformat()

    @app.websocket("/now")
    async def now_over_websocket(websocket: WebSocket, clock: AppClock) -> None:
        await websocket.accept()
        await websocket.send_text(clock.now().isoformat())
        await websocket.close()

    return app


async def test_a_route_gets_the_object_registered_under_its_protocol():
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/now")).json() == START.isoformat()


async def test_a_websocket_route_gets_it_too():
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/now",
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "scheme": "ws",
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    await _app()(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == START.isoformat()


def test_asking_twice_for_a_type_is_one_dependency():
    assert provided(Clock).dependency is provided(Clock).dependency
