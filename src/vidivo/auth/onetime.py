"""Emailed single-use tokens (email verification, password reset): random, stored as their
SHA-256 only, expiring, and redeemed at most once even when two requests race for one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth.models import SingleUseToken
from vidivo.auth.tokens import hash_opaque_token, new_opaque_token

TokenRow = TypeVar("TokenRow", bound=SingleUseToken)


def issue(
    db: AsyncSession,
    kind: type[TokenRow],
    *,
    user_id: str,
    now: datetime,
    ttl_seconds: int,
    **columns: Any,
) -> str:
    """A new token for the user; only its hash is written (with the row's other `columns`)."""
    token = new_opaque_token()
    fields: dict[str, Any] = {
        "user_id": user_id,
        "token_hash": hash_opaque_token(token),
        "expires_at": now + timedelta(seconds=ttl_seconds),
        "created_at": now,
    }
    db.add(kind(**fields, **columns))
    return token


async def redeem(
    db: AsyncSession, kind: type[TokenRow], token: str, now: datetime
) -> TokenRow | None:
    """The token's row, now marked used; None when it is unknown, expired or already used.

    The conditional UPDATE is the claim: of two requests with one token, one matches."""
    token_hash = hash_opaque_token(token)
    claimed = await db.execute(
        update(kind)
        .where(
            kind.token_hash == token_hash,
            kind.used_at.is_(None),
            kind.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await db.scalar(
        select(kind).where(kind.token_hash == token_hash).execution_options(populate_existing=True)
    )


async def void_unused(
    db: AsyncSession, kind: type[SingleUseToken], user_id: str, now: datetime
) -> None:
    """Retire the user's outstanding tokens of this kind (a newer one, or a done job, replaces
    them)."""
    await db.execute(
        update(kind)
        .where(kind.user_id == user_id, kind.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
