"""ICE servers for a call: STUN as configured, TURN with short-lived REST-API credentials.

coturn's `use-auth-secret` scheme: username `"{expiry}:{name}"`, password
`base64(HMAC-SHA1(secret, username))`; coturn refuses the username once `expiry` has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from pydantic import BaseModel

from vidivo.core.config import Settings
from vidivo.core.schemas import Timestamp


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceServers(BaseModel):
    ice_servers: list[IceServer]
    ice_transport_policy: str
    expires_at: Timestamp | None


def _urls(text: str) -> list[str]:
    return [url.strip() for url in text.split(",") if url.strip()]


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers_for(
    settings: Settings, session_id: str, now: datetime, not_after: datetime
) -> IceServers:
    """TURN credentials live the configured time, never past `not_after`: the call's paid
    time plus its grace, so a relay cannot carry media the meter no longer pays for."""
    servers: list[IceServer] = []
    if stun := _urls(settings.stun_urls):
        servers.append(IceServer(urls=stun))
    expires_at = None
    turn = _urls(settings.turn_urls)
    if turn and settings.turn_secret:
        expires_at = min(now + timedelta(seconds=settings.turn_credential_ttl_seconds), not_after)
        username = f"{int(expires_at.timestamp())}:{session_id}"
        servers.append(
            IceServer(
                urls=turn,
                username=username,
                credential=turn_credential(settings.turn_secret, username),
            )
        )
    # Relay-only makes no sense without a relay: fall back to every candidate.
    policy = settings.ice_transport_policy if turn else "all"
    return IceServers(ice_servers=servers, ice_transport_policy=policy, expires_at=expires_at)
