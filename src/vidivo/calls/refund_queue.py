"""A call's pending refunds, carried out one at a time, oldest first, crash-safely.

Whoever holds the call's lease (the request that made a refund, or the billing worker)
carries out the call's pending refunds in turn. Each plans its parts over the captured
windows from what the ledger holds; as nothing else refunds the call meanwhile, a refund
resumed after a crash plans the same parts again, so its idempotency keys
`session:{id}:window:{n}:refund:{refund_id}` replay a provider call, never repeat it. A refund
marks itself started (`retry_at`) before its first provider call and stays first in line
until it is settled. A refusal by the provider fails it and gives back its reservation; a
transient failure or a crash leaves it pending, due again at `retry_at`, for the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from vidivo.auth.models import User
from vidivo.calls import ledger, letters, metrics
from vidivo.calls.models import (
    BillingWindow,
    CallSession,
    LedgerEntry,
    LedgerKind,
    RefundState,
    SessionRefund,
    WindowState,
)
from vidivo.core.clock import Clock
from vidivo.core.money import format_cents, refunded_fee_cents
from vidivo.mail.letters import queue_letter
from vidivo.payments.provider import (
    PaymentError,
    PaymentProvider,
    ProviderRateLimited,
    TransientPaymentError,
)

log = logging.getLogger("vidivo.refunds")
# The call's lease while its refunds are carried out; a started refund whose carrier died is
# due again when the lease has run out.
LEASE = timedelta(seconds=30)
# A transient provider failure is retried by the worker after this (or the provider's
# Retry-After, if longer).
RETRY_DELAY = timedelta(seconds=60)
# A pending refund never started this long after it was made was left by a crash between
# its reservation and its first provider call.
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class RefundCarrier:
    """Whoever carries out a call's refunds: what it needs, and the name its lease goes by."""

    factory: async_sessionmaker[AsyncSession]
    provider: PaymentProvider
    clock: Clock
    owner: str


async def refunded_by_window(db: AsyncSession, session_id: str) -> dict[int, int]:
    rows = await db.execute(
        select(LedgerEntry.window_number, LedgerEntry.amount_cents).where(
            LedgerEntry.session_id == session_id, LedgerEntry.kind == LedgerKind.REFUND
        )
    )
    refunded: dict[int, int] = {}
    for number, amount in rows:
        if number is not None:
            refunded[number] = refunded.get(number, 0) + amount
    return refunded


async def carry_out_refunds(carrier: RefundCarrier, session_id: str) -> bool:
    """Take the call's lease and carry out its pending refunds, oldest first, until none is
    left or the first in line waits for its retry. False if another carrier has the lease."""
    if not await _claim(carrier, session_id):
        return False
    try:
        while (refund := await _first_in_line(carrier.factory, session_id)) is not None:
            if refund.retry_at is not None and refund.retry_at > carrier.clock.now():
                break  # started and waiting for its retry: the refunds behind it wait too
            if not await _carry_out(carrier, refund):
                break
    finally:
        await _release(carrier, session_id)
    return True


async def sessions_with_due_refunds(
    factory: async_sessionmaker[AsyncSession], now: datetime
) -> list[str]:
    """Calls with a pending refund to resume: its retry is due, or a crash left it."""
    async with factory() as db:
        due = (
            select(SessionRefund.session_id)
            .where(
                SessionRefund.state == RefundState.PENDING,
                or_(
                    SessionRefund.retry_at <= now,
                    and_(
                        SessionRefund.retry_at.is_(None),
                        SessionRefund.created_at <= now - ABANDONED_AFTER,
                    ),
                ),
            )
            .distinct()
        )
        return list(await db.scalars(due))


def _plan(
    billing_windows: list[BillingWindow], refunded: dict[int, int], amount_cents: int
) -> tuple[list[tuple[BillingWindow, int]], int]:
    """Take the refund from the latest captures first; also what no capture could cover."""
    plan = []
    remaining = amount_cents
    for window in sorted(billing_windows, key=lambda w: -w.number):
        if window.state != WindowState.CAPTURED or remaining == 0:
            continue
        available = window.captured_cents - refunded.get(window.number, 0)
        take = min(available, remaining)
        if take > 0:
            plan.append((window, take))
            remaining -= take
    return plan, remaining


async def _carry_out(carrier: RefundCarrier, refund: SessionRefund) -> bool:
    """Send the refund's parts not yet recorded; True when it is settled (either way)."""
    async with carrier.factory() as db:
        billing_windows = list(
            await db.scalars(
                select(BillingWindow).where(BillingWindow.session_id == refund.session_id)
            )
        )
        refunded = await refunded_by_window(db, refund.session_id)
        done = sum((await _recorded_parts(db, refund.id)).values())
    plan, uncovered = _plan(billing_windows, refunded, refund.amount_cents - done)
    if uncovered:  # the reservation should have made this impossible
        log.error("refund %s: %d cents not covered by any capture", refund.id, uncovered)
        await _fail(carrier, refund, done, "The captured payments cannot cover this refund.")
        return True
    for window, part in plan:
        if not await _keep_lease(carrier, refund):
            return False
        key = f"session:{refund.session_id}:window:{window.number}:refund:{refund.id}"
        assert window.provider_hold_id is not None
        try:
            result = await carrier.provider.refund(
                window.provider_hold_id, amount_cents=part, idempotency_key=key
            )
        except TransientPaymentError as exc:
            metrics.count_provider_call("refund", exc)
            await _retry_later(carrier, refund, exc)
            return False
        except PaymentError as exc:
            metrics.count_provider_call("refund", exc)
            await _fail(carrier, refund, done, exc.message)
            return True
        metrics.count_provider_call("refund", result)
        fee_back = refunded_fee_cents(window.fee_cents, window.captured_cents, part)
        await _record_part(carrier, refund, window.number, part, fee_back, result.id, key)
        done += part
    async with carrier.factory() as db:
        if await _settle_in(db, refund.id, RefundState.SUCCEEDED, None):
            await _queue_refund_letter(db, carrier.clock, refund)
        await db.commit()
    return True


async def _queue_refund_letter(db: AsyncSession, clock: Clock, refund: SessionRefund) -> None:
    """The guest is told, in the transaction that settles the refund (so exactly once)."""
    session = await db.get_one(CallSession, refund.session_id)
    host = await db.get_one(User, session.host_id)
    letter = letters.refund(
        host_name=host.display_name,
        guest_name=session.guest_name,
        amount_cents=refund.amount_cents,
        session_id=session.id,
        call_date=session.went_live_at or session.created_at,
    )
    queue_letter(db, clock, session.guest_email, letter)


async def _record_part(
    carrier: RefundCarrier,
    refund: SessionRefund,
    window_number: int,
    part: int,
    fee_back: int,
    provider_ref: str,
    key: str,
) -> None:
    async with carrier.factory() as db:
        stored = await db.get_one(CallSession, refund.session_id)
        for kind, value in ((LedgerKind.REFUND, part), (LedgerKind.FEE_REFUND, fee_back)):
            ledger.record(
                db,
                session=stored,
                window_number=window_number,
                kind=kind,
                amount_cents=value,
                provider_ref=provider_ref,
                idempotency_key=key,
                at=carrier.clock.now(),
            )
        amounts = metrics.pending_amounts(db)
        try:
            await db.commit()
        except IntegrityError:  # recorded already, by a carrier whose lease ran out
            await db.rollback()
            return
        metrics.count_committed(amounts)


async def _fail(carrier: RefundCarrier, refund: SessionRefund, refunded: int, message: str) -> None:
    """The provider refused: the refund fails and gives back what it had not refunded."""
    if refunded:  # a later part was refused: what went through stays refunded
        message = (
            f"Refunded {format_cents(refunded)} of {format_cents(refund.amount_cents)}: {message}"
        )
    async with carrier.factory() as db:
        if not await _settle_in(db, refund.id, RefundState.FAILED, message):
            return
        back = refund.amount_cents - refunded
        released = await rows_changed(
            db,
            update(CallSession)
            .where(
                CallSession.id == refund.session_id,
                CallSession.refund_reserved_cents >= back,
            )
            .values(
                refund_reserved_cents=CallSession.refund_reserved_cents - back,
                version=CallSession.version + 1,
            ),
        )
        if released != 1:
            log.error("refund %s: the call had less than %d cents reserved", refund.id, back)
        await db.commit()


async def _retry_later(carrier: RefundCarrier, refund: SessionRefund, error: PaymentError) -> None:
    """Keep the refund pending; the worker sends the same parts again with the same keys."""
    delay = RETRY_DELAY
    if isinstance(error, ProviderRateLimited):
        delay = max(delay, timedelta(seconds=error.retry_after_seconds + 1))
    async with carrier.factory() as db:
        await rows_changed(
            db,
            update(SessionRefund)
            .where(SessionRefund.id == refund.id, SessionRefund.state == RefundState.PENDING)
            .values(retry_at=carrier.clock.now() + delay, last_error=error.message[:500]),
        )
        await db.commit()


async def _settle(
    carrier: RefundCarrier, refund_id: str, state: RefundState, message: str | None
) -> None:
    async with carrier.factory() as db:
        await _settle_in(db, refund_id, state, message)
        await db.commit()


async def _settle_in(
    db: AsyncSession, refund_id: str, state: RefundState, message: str | None
) -> bool:
    settled = await rows_changed(
        db,
        update(SessionRefund)
        .where(SessionRefund.id == refund_id, SessionRefund.state == RefundState.PENDING)
        .values(state=state, retry_at=None, last_error=message[:500] if message else None),
    )
    return settled == 1


async def _claim(carrier: RefundCarrier, session_id: str) -> bool:
    now = carrier.clock.now()
    async with carrier.factory() as db:
        # Like the worker's claims, the lease leaves the version alone: only conditional
        # updates like this one write it.
        claimed = await rows_changed(
            db,
            update(CallSession)
            .where(
                CallSession.id == session_id,
                or_(CallSession.lease_until.is_(None), CallSession.lease_until < now),
            )
            .values(lease_owner=carrier.owner, lease_until=now + LEASE),
        )
        await db.commit()
        return claimed == 1


async def _keep_lease(carrier: RefundCarrier, refund: SessionRefund) -> bool:
    """Before each provider call: extend the lease, and mark the refund started, due again
    (should this carrier die) when the lease has run out. False if the lease was lost."""
    now = carrier.clock.now()
    async with carrier.factory() as db:
        kept = await rows_changed(
            db,
            update(CallSession)
            .where(CallSession.id == refund.session_id, CallSession.lease_owner == carrier.owner)
            .values(lease_until=now + LEASE),
        )
        if kept != 1:
            await db.rollback()
            return False
        await rows_changed(
            db,
            update(SessionRefund)
            .where(SessionRefund.id == refund.id, SessionRefund.state == RefundState.PENDING)
            .values(retry_at=now + LEASE),
        )
        await db.commit()
        return True


async def _release(carrier: RefundCarrier, session_id: str) -> None:
    async with carrier.factory() as db:
        await rows_changed(
            db,
            update(CallSession)
            .where(CallSession.id == session_id, CallSession.lease_owner == carrier.owner)
            .values(lease_owner=None, lease_until=None),
        )
        await db.commit()


async def _first_in_line(
    factory: async_sessionmaker[AsyncSession], session_id: str
) -> SessionRefund | None:
    """The started refund if there is one (it must finish before any other plans), else the
    oldest pending one."""
    async with factory() as db:
        return await db.scalar(
            select(SessionRefund)
            .where(
                SessionRefund.session_id == session_id,
                SessionRefund.state == RefundState.PENDING,
            )
            .order_by(SessionRefund.retry_at.is_(None), SessionRefund.created_at, SessionRefund.id)
            .limit(1)
        )


async def _recorded_parts(db: AsyncSession, refund_id: str) -> dict[int, int]:
    rows = await db.execute(
        select(LedgerEntry.window_number, LedgerEntry.amount_cents).where(
            LedgerEntry.kind == LedgerKind.REFUND,
            LedgerEntry.idempotency_key.like(f"%:refund:{refund_id}:refund"),
        )
    )
    return {number: amount for number, amount in rows if number is not None}


async def rows_changed(db: AsyncSession, statement: Executable) -> int:
    """Run an UPDATE; how many rows it changed (a conditional update's verdict)."""
    result = await db.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
