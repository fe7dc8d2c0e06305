"""Every redirect leads to the public base URL: the `Host` a request names is the client's
word, and a `Location` built from it (Starlette's trailing-slash redirect, a mount's) would
send users to whatever host an attacker wrote there."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def on_public_base(base_url: str, location: str) -> str:
    """`location`'s path and query on `base_url`; a location that is neither absolute nor
    rooted (`next`) is left to resolve against the page that was asked for."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc and not location.startswith("/"):
        return location
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{base_url}{parts.path or '/'}{query}{fragment}"


class RedirectsToPublicBase:
    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def rewritten(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, self._location(value) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, rewritten)

    def _location(self, value: bytes) -> bytes:
        return on_public_base(self.base_url, value.decode("latin-1")).encode("latin-1")
