"""`Idempotency-Key`: the same key and body replays the first answer; another body is a 409."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


# A key claimed by work that spans several transactions (a call's start: its first writes,
# then the provider, then the rest), before its answer is known.
IN_PROGRESS = 0
# How often a request that finds its key's work under way looks again for the answer.
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Claim:
    """(owner, endpoint, key) and the request's fingerprint, for work under one key."""

    owner: str
    endpoint: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class UnderWay:
    """Work claimed under a key whose answer did not come in time: its request failed or its
    process stopped after the work's first writes (or it is still going, slowly)."""

    work: str


def claim_for(owner: str, endpoint: str, key: str, request_body: dict[str, Any]) -> Claim:
    return Claim(owner, endpoint, key, request_fingerprint(request_body))


def reserve(db: AsyncSession, clock: Clock, claim: Claim, work: str) -> None:
    """Claim the key in the caller's transaction, committed with the work's first writes: a
    request with the same key that comes later, or at the same moment, finds it (the latter
    as an IntegrityError at the caller's commit). `work` names what those writes began (a
    call's id), for a repeat to carry on if no answer ever comes."""
    db.add(
        IdempotencyRecord(
            owner=claim.owner,
            endpoint=claim.endpoint,
            key=claim.key,
            request_hash=claim.fingerprint,
            status_code=IN_PROGRESS,
            response_body=work,  # until the answer replaces it
            created_at=clock.now(),
        )
    )


async def complete(
    factory: async_sessionmaker[AsyncSession], claim: Claim, status_code: int, body: dict[str, Any]
) -> None:
    """The answer to the claimed work, for the requests that repeat it."""
    async with factory() as db:
        await db.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.owner == claim.owner,
                IdempotencyRecord.endpoint == claim.endpoint,
                IdempotencyRecord.key == claim.key,
            )
            .values(status_code=status_code, response_body=json.dumps(body))
        )
        await db.commit()


async def answer_of(
    factory: async_sessionmaker[AsyncSession], clock: Clock, claim: Claim, *, wait_seconds: float
) -> StoredResponse | UnderWay | None:
    """The stored answer for the claim's key: None if the key is new (or expired); another
    body under it is a 409 `idempotency_conflict`. Work still under way is waited for until
    its claim is `wait_seconds` old (and for at most that long here); past that, no answer is
    coming from its own request, and the work is `UnderWay` for this one to carry on."""
    deadline = time.monotonic() + wait_seconds
    while True:
        async with factory() as db:
            record = await _stored(db, clock, claim.owner, claim.endpoint, claim.key)
            await db.commit()  # an expired record is deleted
        if record is None:
            return None
        if record.request_hash != claim.fingerprint:
            raise IdempotencyConflict()
        if record.status_code != IN_PROGRESS:
            return _replay(record, claim.fingerprint)
        given_up = record.created_at + timedelta(seconds=wait_seconds)
        if clock.now() >= given_up or time.monotonic() >= deadline:
            return UnderWay(record.response_body)
        await asyncio.sleep(_POLL_SECONDS)
