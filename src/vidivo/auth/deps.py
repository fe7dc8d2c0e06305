"""Who is calling: bearer-token dependencies for routes; the accounts domain's objects, as the
composition root built them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vidivo.auth import service
from vidivo.auth.models import Role
from vidivo.auth.service import GuestPrincipal, Principal
from vidivo.auth.tokens import KeyRing, TokenAuthority
from vidivo.core.client_address import client_address
from vidivo.core.deps import DbSession, provided
from vidivo.core.errors import Forbidden, Unauthorized
from vidivo.mail.service import Mailer

Tokens = Annotated[TokenAuthority, provided(TokenAuthority)]
Keys = Annotated[KeyRing, provided(KeyRing)]
Outbox = Annotated[Mailer, provided(Mailer)]

_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use an `Authorization: Bearer <token>` header.")
    return token.strip()


async def optional_principal(
    request: Request, db: DbSession, tokens: Tokens, _: BearerCredentials
) -> Principal | None:
    """The caller when a token is sent; a sent but invalid token is refused, never ignored."""
    token = _bearer_token(request)
    if token is None:
        return None
    return await service.authenticate(db, tokens, token)


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
# FastAPI documents every bearer dependency as required. An operation that takes
# `OptionalPrincipal` passes this as `openapi_extra`: FastAPI appends it to the bearer
# requirement, and OpenAPI's empty requirement object says "or no token at all".
TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}]}


async def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise Unauthorized()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


async def require_host(principal: CurrentPrincipal) -> Principal:
    if principal.user.role != Role.HOST:
        raise Forbidden("This needs a host account.")
    return principal


CurrentHost = Annotated[Principal, Depends(require_host)]


async def optional_caller(
    request: Request, db: DbSession, tokens: Tokens, _: BearerCredentials
) -> Principal | GuestPrincipal | None:
    token = _bearer_token(request)
    if token is None:
        return None
    return await service.authenticate_caller(db, tokens, token)


async def require_caller(
    caller: Annotated[Principal | GuestPrincipal | None, Depends(optional_caller)],
) -> Principal | GuestPrincipal:
    if caller is None:
        raise Unauthorized()
    return caller


Caller = Annotated[Principal | GuestPrincipal, Depends(require_caller)]


def client_ip(request: Request) -> str:
    return client_address(request.scope)
