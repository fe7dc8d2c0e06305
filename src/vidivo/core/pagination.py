"""Opaque, tamper-proof keyset cursors and the one page shape every list uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vidivo.core.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class CursorSigner:
    """Cursors are `base64url(json).base64url(hmac)`: clients can pass them back, not forge them."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, position: dict[str, Any]) -> str:
        payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: str, *, expect_keys: set[str]) -> dict[str, Any]:
        invalid = ValidationFailed.field("cursor", "The cursor is not valid for this list.")
        payload_part, _, mac_part = cursor.partition(".")
        try:
            payload, mac = _unb64(payload_part), _unb64(mac_part)
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        try:
            position = json.loads(payload)
        except ValueError:
            raise invalid from None
        if not isinstance(position, dict) or set(position) != expect_keys:
            raise invalid
        return position


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > 1024:
        raise ValueError("bad length")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
    if _b64(raw) != text:  # only the one canonical spelling: no altered padding bits
        raise ValueError("non-canonical base64")
    return raw


async def keyset_page(
    db: AsyncSession,
    query: Select[T],
    id_column: InstrumentedAttribute[str],
    signer: CursorSigner,
    *,
    owner: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None, bool]:
    """Newest first by ULID; the cursor is the last id seen, signed and bound to its owner."""
    limit = min(limit, MAX_LIMIT)
    if cursor is not None:
        position = signer.decode(cursor, expect_keys={"h", "id"})
        if position["h"] != owner or not isinstance(position["id"], str):
            raise ValidationFailed.field("cursor", "The cursor is not valid for this list.")
        query = query.where(id_column < position["id"])
    rows = list(await db.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        signer.encode({"h": owner, "id": str(getattr(rows[-1], id_column.key))})
        if has_more
        else None
    )
    return rows, next_cursor, has_more
