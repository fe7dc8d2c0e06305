"""`Idempotency-Key`: the same key and body replays the first answer; another body is a 409."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.core.clock import Clock
from vidivo.core.errors import IdempotencyConflict, ValidationFailed
from vidivo.idempotency.models import IdempotencyRecord

# Stripe keeps keys for 24 hours; a retry after that is a new request.
KEY_LIFETIME = timedelta(hours=24)
_KEY_SHAPE = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def validate_key(key: str | None) -> str | None:
    if key is not None and not _KEY_SHAPE.fullmatch(key):
        raise ValidationFailed.field("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
    return key


def request_fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _stored(
    db: AsyncSession, clock: Clock, owner: str, endpoint: str, key: str
) -> IdempotencyRecord | None:
    record = await db.get(IdempotencyRecord, (owner, endpoint, key), populate_existing=True)
    if record is not None and record.created_at <= clock.now() - KEY_LIFETIME:
        await db.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.owner == owner,
                IdempotencyRecord.endpoint == endpoint,
                IdempotencyRecord.key == key,
            )
        )
        return None
    return record


def _replay(record: IdempotencyRecord, fingerprint: str) -> StoredResponse:
    if record.request_hash != fingerprint:
        raise IdempotencyConflict()
    return StoredResponse(record.status_code, json.loads(record.response_body), replayed=True)


async def run_once(
    db: AsyncSession,
    clock: Clock,
    *,
    owner: str,
    endpoint: str,
    key: str | None,
    request_body: dict[str, Any],
    action: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> StoredResponse:
    """Run `action` once per (owner, endpoint, key); its effects and the record commit together."""
    if key is None:
        status, body = await action()
        return StoredResponse(status, body, replayed=False)
    fingerprint = request_fingerprint(request_body)
    existing = await _stored(db, clock, owner, endpoint, key)
    if existing is not None:
        return _replay(existing, fingerprint)
    status, body = await action()
    db.add(
        IdempotencyRecord(
            owner=owner,
            endpoint=endpoint,
            key=key,
            request_hash=fingerprint,
            status_code=status,
            response_body=json.dumps(body),
            created_at=clock.now(),
        )
    )
    try:
        await db.flush()
    except IntegrityError:
        # A concurrent request with the same key won: undo our work and answer as it did.
        await db.rollback()
        winner = await db.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.owner == owner,
                IdempotencyRecord.endpoint == endpoint,
                IdempotencyRecord.key == key,
            )
        )
        if winner is None:
            raise
        return _replay(winner, fingerprint)
    return StoredResponse(status, body, replayed=False)
