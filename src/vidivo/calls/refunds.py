"""Host refunds: never more than captured, whatever runs at once.

A refund first *reserves* its amount on the call: one conditional UPDATE of
`call_sessions.refund_reserved_cents`, in the transaction that stores the pending refund, so
refunds made at once can never promise together more than was captured; the one that would
go over is refused (409 `refund_exceeds_remaining`) before any provider call. The refund is
then carried out by the call's refund queue (`refund_queue`), at once if this request can
take the call's lease, else by whoever holds it, or by the worker.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.calls.models import BillingWindow, CallSession, RefundState, SessionRefund, WindowState
from vidivo.calls.refund_queue import (
    RefundCarrier,
    carry_out_refunds,
    refunded_by_window,
    rows_changed,
)
from vidivo.core.clock import Clock
from vidivo.core.db import new_id
from vidivo.core.errors import ApiError, ValidationFailed
from vidivo.core.money import format_cents
from vidivo.payments.provider import PaymentProvider
from vidivo.payouts.service import PaymentProviderUnavailable

# A request whose refund waits behind another carrier of the call's refunds looks again this
# often, this many times, before it answers that the refund is under way.
LEASE_POLL_SECONDS = 0.05
LEASE_POLLS = 200


class RefundExceedsRemaining(ApiError):
    code, status = "refund_exceeds_remaining", 409
    message = "Another refund of this call took what was left to refund."


async def refund_session(
    factory: async_sessionmaker[AsyncSession],
    provider: PaymentProvider,
    clock: Clock,
    session_id: str,
    *,
    amount_cents: int | None,
    reason: str | None,
    request_key: str,
) -> SessionRefund:
    """Refund `amount_cents` (None: everything left) of an ended call. The same request key
    is the same refund. Returns it succeeded, or still pending when it waits behind another
    refund or a retry (the worker finishes it); a provider failure raises."""
    refund = await _reserve(
        factory, clock, session_id, amount_cents, reason=reason, request_key=request_key
    )
    carrier = RefundCarrier(factory, provider, clock, owner=f"refund-{new_id()}")
    for _ in range(LEASE_POLLS):
        if refund.state != RefundState.PENDING:
            break
        carried = await carry_out_refunds(carrier, session_id)
        refund = await _load(factory, refund.id)
        if carried:
            break
        await asyncio.sleep(LEASE_POLL_SECONDS)  # another carrier has the call's refunds
    if refund.state == RefundState.FAILED:
        raise PaymentProviderUnavailable(refund.last_error)
    if refund.state == RefundState.PENDING and refund.last_error:
        raise PaymentProviderUnavailable(
            f"{refund.last_error} The refund is kept and retried automatically."
        )
    return refund


async def _reserve(
    factory: async_sessionmaker[AsyncSession],
    clock: Clock,
    session_id: str,
    amount_cents: int | None,
    *,
    reason: str | None,
    request_key: str,
) -> SessionRefund:
    """The refund stored under `request_key`, or a new pending one with its amount reserved."""
    async with factory() as db:
        existing = await _by_request_key(db, session_id, request_key)
        if existing is not None:
            return existing
        captured = await _captured_cents(db, session_id)
        # What is left as read counts the refunds already taken; those still under way are
        # counted by the reservation below.
        left = captured - sum((await refunded_by_window(db, session_id)).values())
        amount = left if amount_cents is None else amount_cents
        if amount <= 0:
            raise ValidationFailed.field("amount", "there is nothing left to refund")
        if amount > left:
            raise ValidationFailed.field("amount", "is more than what is left to refund")
        reserved = await rows_changed(
            db,
            update(CallSession)
            .where(
                CallSession.id == session_id,
                CallSession.refund_reserved_cents + amount <= captured,
            )
            # The version moves too: other writers' loaded copies of the call are stale now.
            .values(
                refund_reserved_cents=CallSession.refund_reserved_cents + amount,
                version=CallSession.version + 1,
            ),
        )
        if reserved != 1:
            await db.rollback()
            # A retry of a refund made meanwhile under the same key is that refund.
            existing = await _by_request_key(db, session_id, request_key)
            if existing is not None:
                return existing
            unreserved = captured - await _reserved_cents(db, session_id)
            raise RefundExceedsRemaining(
                f"Another refund of this call is taken or under way: "
                f"{format_cents(max(unreserved, 0))} is left to refund, "
                f"not {format_cents(amount)}."
            )
        refund = SessionRefund(
            session_id=session_id,
            request_key=request_key,
            amount_cents=amount,
            reason=reason,
            state=RefundState.PENDING,
            created_at=clock.now(),
        )
        db.add(refund)
        try:
            await db.commit()
        except IntegrityError:  # the same key, stored first by a concurrent request
            await db.rollback()
            existing = await _by_request_key(db, session_id, request_key)
            if existing is None:
                raise
            return existing
        return refund


async def _load(factory: async_sessionmaker[AsyncSession], refund_id: str) -> SessionRefund:
    async with factory() as db:
        return await db.get_one(SessionRefund, refund_id)


async def _by_request_key(
    db: AsyncSession, session_id: str, request_key: str
) -> SessionRefund | None:
    return await db.scalar(
        select(SessionRefund).where(
            SessionRefund.session_id == session_id, SessionRefund.request_key == request_key
        )
    )


async def _captured_cents(db: AsyncSession, session_id: str) -> int:
    total = await db.scalar(
        select(func.sum(BillingWindow.captured_cents)).where(
            BillingWindow.session_id == session_id,
            BillingWindow.state == WindowState.CAPTURED,
        )
    )
    return int(total or 0)


async def _reserved_cents(db: AsyncSession, session_id: str) -> int:
    reserved = await db.scalar(
        select(CallSession.refund_reserved_cents).where(CallSession.id == session_id)
    )
    return int(reserved or 0)
