"""What a provider's answer does to a window, the session and the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vidivo.calls import ledger
from vidivo.calls.actions import ProviderAction
from vidivo.calls.events import CallEvent, HoldDeclined, WindowRenewed
from vidivo.calls.models import BillingWindow, CallSession, LedgerEntry, LedgerKind, WindowState
from vidivo.calls.terms import CallTerms
from vidivo.calls.timeline import coverage_ends_at
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    Hold,
    HoldStatus,
    PaymentError,
    ProviderRateLimited,
    TransientPaymentError,
)

if TYPE_CHECKING:
    from vidivo.calls.engine import ProviderStep

MAX_RETRY_DELAY_SECONDS = 300


def record_outcome(
    entries: list[LedgerEntry],
    session: CallSession,
    billing_windows: list[BillingWindow],
    window: BillingWindow,
    step: ProviderStep,
    outcome: Hold | PaymentError,
    now: datetime,
    events: list[CallEvent],
) -> None:
    window.updated_at = now
    if isinstance(outcome, TransientPaymentError) or (
        isinstance(outcome, PaymentError) and not step.action.places_hold
    ):
        _retry_later(window, outcome, now)
    elif step.action.places_hold:
        _record_hold(entries, session, billing_windows, window, step, outcome, now, events)
    elif isinstance(outcome, Hold):
        _record_settlement(entries, session, window, step, outcome, now)
    session.next_action_at = now


def _retry_later(window: BillingWindow, error: PaymentError | str, now: datetime) -> None:
    """Keep the action in flight and try again later, with the same idempotency key."""
    window.hold_attempts += 1
    delay = min(MAX_RETRY_DELAY_SECONDS, 2 ** min(window.hold_attempts, 9))
    if isinstance(error, ProviderRateLimited):
        delay = max(delay, int(error.retry_after_seconds) + 1)
    window.retry_at = now + timedelta(seconds=delay)
    window.last_error = str(getattr(error, "message", error))[:500]


def _record_hold(
    entries: list[LedgerEntry],
    session: CallSession,
    billing_windows: list[BillingWindow],
    window: BillingWindow,
    step: ProviderStep,
    outcome: Hold | PaymentError,
    now: datetime,
    events: list[CallEvent],
) -> None:
    if isinstance(outcome, Hold) and outcome.status == HoldStatus.REQUIRES_ACTION:
        # Asked with the guest present (off-session holds are refused instead): the guest
        # authenticates, then the hold is looked at again. The action stays for its key.
        window.state = WindowState.AUTHENTICATING
        window.provider_hold_id = outcome.id
        return
    if isinstance(outcome, Hold) and outcome.status == HoldStatus.REQUIRES_CAPTURE:
        window.state = WindowState.HELD
        window.held_cents = outcome.amount_cents
        window.provider_hold_id = outcome.id
        window.pending_action = None
        entries.append(
            ledger.entry(
                session=session,
                window_number=window.number,
                kind=LedgerKind.HOLD,
                amount_cents=outcome.amount_cents,
                provider_ref=outcome.id,
                idempotency_key=step.idempotency_key,
                at=now,
            )
        )
        if window.number > 1:
            events.append(WindowRenewed(window.number, outcome.amount_cents))
        return
    decline_code = _decline_code(window, outcome)
    terms = CallTerms.of(session)
    fallback = terms.fallback_minutes(window.minutes)
    # A smaller hold cannot help a card whose bank wants the guest: that is the card flow.
    needs_guest = decline_code in NEEDS_THE_GUEST
    if step.action == ProviderAction.HOLD and window.number > 1 and fallback and not needs_guest:
        # One retry with a smaller hold: a few more minutes may still fit on the card.
        window.minutes = fallback
        window.pending_action = ProviderAction.HOLD_FALLBACK
        window.pending_amount_cents = terms.cents_for(fallback)
        return
    window.state = WindowState.DECLINED
    window.decline_code = decline_code
    window.last_error = str(getattr(outcome, "message", outcome))[:500]
    window.pending_action = None
    if window.number > 1:
        deadline = coverage_ends_at(session, billing_windows, now)
        events.append(
            HoldDeclined(window.number, decline_code, window.pending_amount_cents or 0, deadline)
        )


AUTH_FAILED = "authentication_failed"  # the guest was asked and the bank said no
NEEDS_THE_GUEST = {"authentication_required", AUTH_FAILED}


def _decline_code(window: BillingWindow, outcome: Hold | PaymentError) -> str:
    if window.state == WindowState.AUTHENTICATING:
        return AUTH_FAILED
    if isinstance(outcome, CardDeclined):
        return outcome.decline_code
    if isinstance(outcome, AuthenticationRequired):
        return "authentication_required"
    return "payment_failed"


def _record_settlement(
    entries: list[LedgerEntry],
    session: CallSession,
    window: BillingWindow,
    step: ProviderStep,
    hold: Hold,
    now: datetime,
) -> None:
    if hold.status == HoldStatus.SUCCEEDED:
        window.state = WindowState.CAPTURED
        window.captured_cents = hold.amount_captured_cents
        window.fee_cents = hold.application_fee_cents
    elif hold.status == HoldStatus.CANCELED or (
        # A hold whose authentication failed was never authorized: nothing to release.
        step.action == ProviderAction.CANCEL and hold.status == HoldStatus.FAILED
    ):
        window.state = WindowState.RELEASED
    else:
        _retry_later(window, f"hold is {hold.status} after {step.action}", now)
        return
    window.pending_action = None
    settled = [
        (LedgerKind.CAPTURE, window.captured_cents),
        (LedgerKind.FEE, window.fee_cents),
        (LedgerKind.RELEASE, window.held_cents - window.captured_cents),
    ]
    entries.extend(
        ledger.entry(
            session=session,
            window_number=window.number,
            kind=kind,
            amount_cents=amount,
            provider_ref=hold.id,
            idempotency_key=step.idempotency_key,
            at=now,
        )
        for kind, amount in settled
    )
