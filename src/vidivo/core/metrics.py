"""Prometheus metrics: the generic ones (HTTP, sockets, the event hub) and how they are served.

Metric objects live once per process in prometheus_client's default registry (each domain
defines its own, e.g. `vidivo.calls.metrics`); building several apps in one process (the
tests) shares them instead of registering duplicates. `/metrics` is served by the API
behind a bearer token (`VIDIVO_METRICS=token`), or by a small server of its own on a
private address (`listen`, and always so for `vidivo worker`).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidivo.core.errors import Unauthorized, error_response

# A layer that answers without the router (the public link fast path) names its route here.
ROUTE_TEMPLATE_KEY = "vidivo.route_template"
UNMATCHED = "unmatched"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_SECONDS = Histogram(
    "vidivo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
)
OPEN_WEBSOCKETS = Gauge(
    "vidivo_websockets_open",
    "WebSocket connections open in this process, by kind (call, host_events).",
    ["kind"],
)
HUB_PUBLISH_FAILURES = Counter(
    "vidivo_hub_publish_failures",
    "Events Redis refused to publish (delivered on this instance only).",
)

ScrapeHook = Callable[[], Awaitable[None]]


class HttpMetrics:
    """Times every HTTP request by its route's template, never its raw path: labels stay
    bounded whatever paths clients send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "other"
            HTTP_REQUEST_SECONDS.labels(_route_template(scope), method, status).observe(
                time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    template = scope.get(ROUTE_TEMPLATE_KEY)
    if template is not None:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Constant-time, so the comparison's duration tells nothing about the token."""
    presented = (authorization or "").encode()
    return secrets.compare_digest(presented, f"Bearer {token}".encode())


def metrics_endpoint(
    token: str | None, before_scrape: ScrapeHook | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """`GET /metrics`: the registry in Prometheus' text format; with a token, only for a
    request that presents it."""

    async def metrics(request: Request) -> Response:
        if token is not None and not bearer_matches(request.headers.get("authorization"), token):
            return error_response(Unauthorized("A valid metrics token is required."))
        if before_scrape is not None:
            await before_scrape()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics


def metrics_server(
    host: str, port: int, token: str | None, before_scrape: ScrapeHook | None = None
) -> uvicorn.Server:
    """A server of its own for `/metrics`, on an address apart from the public API."""
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(token, before_scrape))])
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", access_log=False, log_config=None
    )
    return uvicorn.Server(config)


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound here, not by uvicorn: a port in use is an `OSError` the caller reports, where
    uvicorn would exit the whole process from inside its task."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


@asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[None]:
    """`server` answers inside the block and has stopped when it ends."""
    sock = listening_socket(server.config.host, server.config.port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await task
