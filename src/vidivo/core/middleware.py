"""ASGI middleware: body policy and security headers, before any route runs."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidivo.core.errors import (
    ApiError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
)

# NUL is valid JSON (`\u0000`) and URL (`%00`) text, but no text column takes it (PostgreSQL
# refuses it outright): refused at the door rather than failing deep inside.
_NUL_IN_URL = re.compile(rb"\x00|%00")
_NUL_IN_JSON = re.compile(rb"\x00|\\u0000", re.IGNORECASE)

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    # The app's own scripts and Stripe.js (card fields live in Stripe's frames); WebSockets
    # and API calls to this origin; camera streams as blob/mediastream sources.
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' https://js.stripe.com; "
        b"frame-src https://js.stripe.com https://hooks.stripe.com; "
        b"connect-src 'self' https://api.stripe.com; img-src 'self' data: blob:; "
        b"media-src 'self' blob: mediastream:; style-src 'self'; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    # Calls need the camera and microphone, on this origin only (not in Stripe's frames);
    # nothing here needs the other sensors. (`payment` is left to Stripe's wallets.)
    (
        b"permissions-policy",
        b"camera=(self), microphone=(self), display-capture=(), geolocation=(), usb=(), "
        b"midi=(), accelerometer=(), gyroscope=(), magnetometer=()",
    ),
]
# Production is served over HTTPS only: browsers are told to never try plain HTTP again.
STRICT_TRANSPORT = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def replaying(first: Message, receive: Receive) -> Receive:
    """`receive` for an app inside a layer that has read `first` already: that message
    once, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return replay


class RequestBodyPolicy:
    """Bodies are JSON and small: over `max_bytes` is 413, another media type is 415.

    The (small) body is read up front and replayed to the app, so the limit holds for
    chunked uploads too and the app never sees a partial body.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger_under: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger_under = larger_under or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.larger_under.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        url = (scope.get("raw_path") or b"") + b"?" + scope.get("query_string", b"")
        if _NUL_IN_URL.search(url):
            await self._refuse(scope, receive, send, _nul_refused())
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._refuse(scope, receive, send, self._too_large(limit))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, self._too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _NUL_IN_JSON.search(body):
            await self._refuse(scope, receive, send, _nul_refused())
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        # The API speaks JSON; the web pages (under other paths) post ordinary forms.
        if body and scope["path"].startswith("/v1/") and not _is_json(content_type):
            await self._refuse(scope, receive, send, UnsupportedMediaType())
            return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replaying(whole, receive), send)

    @staticmethod
    def _too_large(limit: int) -> ApiError:
        return PayloadTooLarge(f"The request body must be at most {limit} bytes.")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
        await error_response(error)(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, strict_transport: bool = False) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, *([STRICT_TRANSPORT] if strict_transport else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _nul_refused() -> ApiError:
    return ValidationFailed("Text must not contain NUL characters.")
