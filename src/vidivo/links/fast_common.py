"""What the links' fast paths share: the caller's login from its bearer token, checked in
memory as the routes check it (the database part of the check is in each path's statement);
and a JSON answer sent as the routes' `JSONResponse` sends it."""

from __future__ import annotations

from starlette.types import Scope, Send

from vidivo.auth.tokens import InvalidToken, TokenAuthority


def _bearer(scope: Scope) -> str | None:
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_login(scope: Scope, tokens: TokenAuthority) -> tuple[str, str] | None:
    """(login session id, user id) of a valid user token; None for anything the route must
    judge (no token, another kind, not valid now)."""
    token = _bearer(scope)
    if token is None:
        return None
    try:
        claims = tokens.verify(token)
    except InvalidToken:
        return None
    session_id, user_id = claims.get("sid"), claims.get("sub")
    if not isinstance(session_id, str) or not isinstance(user_id, str):
        return None
    return session_id, user_id


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A serialized JSON body, with the headers `JSONResponse` gives it."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
