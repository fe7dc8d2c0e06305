"""Host refunds: never more than captured, spread over the call's captures, crash-safe."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.calls import ledger
from vidivo.calls.models import (
    BillingWindow,
    CallSession,
    LedgerEntry,
    LedgerKind,
    RefundState,
    SessionRefund,
    WindowState,
)
from vidivo.core.errors import ValidationFailed
from vidivo.deps import AppContext
from vidivo.payments.provider import PaymentError
from vidivo.payouts.service import PaymentProviderUnavailable


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


def _plan(
    billing_windows: list[BillingWindow], refunded: dict[int, int], amount_cents: int
) -> list[tuple[BillingWindow, int]]:
    """Take the refund from the latest captures first."""
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
    if remaining:
        raise ValidationFailed.field("amount", "is more than what is left to refund")
    return plan


async def refund_session(
    context: AppContext,
    session: CallSession,
    *,
    amount_cents: int | None,
    reason: str | None,
    request_key: str,
) -> SessionRefund:
    """Refund `amount_cents` (None: everything left). The same request key is the same refund:
    a retry after a crash re-sends only the provider calls that had not been recorded."""
    async with context.session_factory() as db:
        existing = await db.scalar(
            select(SessionRefund).where(
                SessionRefund.session_id == session.id, SessionRefund.request_key == request_key
            )
        )
        billing_windows = list(
            await db.scalars(select(BillingWindow).where(BillingWindow.session_id == session.id))
        )
        refunded = await refunded_by_window(db, session.id)
        if existing is None:
            left = sum(w.captured_cents for w in billing_windows) - sum(refunded.values())
            amount = left if amount_cents is None else amount_cents
            if amount <= 0:
                raise ValidationFailed.field("amount", "there is nothing left to refund")
            _plan(billing_windows, refunded, amount)  # validates before anything is stored
            existing = SessionRefund(
                session_id=session.id,
                request_key=request_key,
                amount_cents=amount,
                reason=reason,
                state=RefundState.PENDING,
                created_at=context.clock.now(),
            )
            db.add(existing)
            try:
                await db.commit()
            except IntegrityError:
                await db.rollback()
                return await refund_session(
                    context,
                    session,
                    amount_cents=amount_cents,
                    reason=reason,
                    request_key=request_key,
                )
        if existing.state == RefundState.SUCCEEDED:
            return existing
        refund_id, amount = existing.id, existing.amount_cents
        done = await _recorded_parts(db, refund_id)
        plan = _plan(billing_windows, {n: v - done.get(n, 0) for n, v in refunded.items()}, amount)

    for window, part in plan:
        if window.number in done:
            continue
        key = f"session:{session.id}:window:{window.number}:refund:{refund_id}"
        assert window.provider_hold_id is not None
        try:
            result = await context.payments.refund(
                window.provider_hold_id, amount_cents=part, idempotency_key=key
            )
        except PaymentError as exc:
            raise PaymentProviderUnavailable(exc.message) from exc
        fee_back = window.fee_cents * part // window.captured_cents if window.captured_cents else 0
        async with context.session_factory() as db:
            stored = await db.get_one(CallSession, session.id)
            for kind, value in ((LedgerKind.REFUND, part), (LedgerKind.FEE_REFUND, fee_back)):
                ledger.record(
                    db,
                    session=stored,
                    window_number=window.number,
                    kind=kind,
                    amount_cents=value,
                    provider_ref=result.id,
                    idempotency_key=key,
                    at=context.clock.now(),
                )
            await db.commit()
    async with context.session_factory() as db:
        stored_refund = await db.get_one(SessionRefund, refund_id)
        stored_refund.state = RefundState.SUCCEEDED
        await db.commit()
        return stored_refund


async def _recorded_parts(db: AsyncSession, refund_id: str) -> dict[int, int]:
    rows = await db.execute(
        select(LedgerEntry.window_number, LedgerEntry.amount_cents).where(
            LedgerEntry.kind == LedgerKind.REFUND,
            LedgerEntry.idempotency_key.like(f"%:refund:{refund_id}:refund"),
        )
    )
    return {number: amount for number, amount in rows if number is not None}
