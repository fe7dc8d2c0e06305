"""Who is asking: the one place a request's client address is decided.

The socket peer, unless that peer is one of our proxies (`VIDIVO_TRUSTED_PROXIES`): then the
`X-Forwarded-For` chain is read from the right (each proxy appends what it saw) and the first
address not of our proxies is the client. Whatever a client writes further left is its own
word and is never used: rotating it must not reset a rate limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def parse_networks(spec: str) -> list[Network]:
    """`"10.0.0.1, 172.16.0.0/12"` as networks; a bad entry raises ValueError naming it."""
    networks = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return networks


def client_address(scope: Scope) -> str:
    """The client's address as `TrustedProxyClients` settled it (use this, not `client.host`)."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN


def _is_among(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], proxies: list[Network]) -> str:
    if not _is_among(peer, proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _is_among(hop, proxies):
            return hop if _is_address(hop) else peer
    return peer  # only our proxies on the way: the request came from one of them


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class TrustedProxyClients:
    """Puts the client's address (see the module docstring) in `scope["client"]`, once, before
    anything reads it."""

    def __init__(self, app: ASGIApp, trusted_proxies: str) -> None:
        self.app = app
        self.proxies = parse_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies:
            peer = client_address(scope)
            forwarded = [
                v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"
            ]
            address = forwarded_client(peer, forwarded, self.proxies)
            if address != peer:
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)
