"""What the API shows of a call: its state, terms, charges and receipt, built from its rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from vidivo.calls.meter import METER_RULE
from vidivo.calls.models import COVERING, BillingWindow, CallSession, SessionState, WindowState
from vidivo.calls.money_schemas import Receipt, ReceiptWindow
from vidivo.calls.schemas import (
    Charges,
    ChargeTotals,
    HostSessionOut,
    PaymentAuthentication,
    SessionOut,
    TermsOut,
    WindowCharge,
)
from vidivo.calls.terms import CallTerms
from vidivo.calls.timeline import billed_ms, coverage_minutes
from vidivo.core.money import format_cents

if TYPE_CHECKING:
    from vidivo.calls.start import PendingAuthentication

SETTLED = (WindowState.CAPTURED, WindowState.RELEASED)


def terms_out(terms: CallTerms) -> TermsOut:
    cap = terms.max_spend_cents
    return TermsOut(
        currency=terms.currency.upper(),
        rate_per_minute=format_cents(terms.rate_cents),
        window_size_minutes=terms.window_minutes,
        max_spend=None if cap is None else format_cents(cap),
        platform_fee_percent=_percent(terms.fee_basis_points),
        reconnect_grace_seconds=terms.reconnect_grace_seconds,
        metering=METER_RULE,
    )


def _percent(basis_points: int) -> str:
    """Basis points as a percentage with two decimals: 1250 -> "12.50"."""
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def billed_cents(session: CallSession, now: datetime) -> int:
    """What the call has cost so far (0 until it went live)."""
    if session.went_live_at is None:
        return 0
    return CallTerms.of(session).bill_cents(billed_ms(session, now), went_live=True)


def session_out(
    session: CallSession, billing_windows: list[BillingWindow], now: datetime
) -> SessionOut:
    terms = CallTerms.of(session)
    current = next((w.number for w in reversed(billing_windows) if w.state in COVERING), None)
    next_renewal_at = None
    if session.state == SessionState.LIVE and session.next_action_at is not None:
        next_renewal_at = session.next_action_at
    cap = terms.max_spend_cents
    return SessionOut(
        id=session.id,
        link_id=session.link_id,
        state=session.state,
        end_reason=session.end_reason,
        guest_name=session.guest_name,
        rate_per_minute=format_cents(terms.rate_cents),
        window_size_minutes=terms.window_minutes,
        max_spend=None if cap is None else format_cents(cap),
        live_seconds=billed_ms(session, now) // 1000,
        billed=format_cents(billed_cents(session, now)),
        current_window=current,
        next_renewal_at=next_renewal_at,
        next_hold=_next_hold(session, billing_windows, terms),
        join_deadline=session.waiting_deadline
        if session.state == SessionState.WAITING_FOR_HOST
        else None,
        hold_declined=bool(billing_windows) and billing_windows[-1].state == WindowState.DECLINED,
        awaiting_authentication=bool(billing_windows)
        and billing_windows[-1].state == WindowState.AUTHENTICATING,
        away=_away(session),
        created_at=session.created_at,
        went_live_at=session.went_live_at,
        ended_at=session.ended_at,
        terms=terms_out(terms),
        as_of=now,
    )


def _next_hold(
    session: CallSession, billing_windows: list[BillingWindow], terms: CallTerms
) -> str | None:
    """What the next renewal holds, as the engine will plan it: the window after what is
    covered, shortened by the guest's cap (None once the cap is covered)."""
    if session.state not in (SessionState.LIVE, SessionState.PAUSED):
        return None
    minutes = terms.next_window_minutes(covered_minutes=coverage_minutes(session, billing_windows))
    return format_cents(terms.cents_for(minutes)) if minutes else None


def host_session_out(
    session: CallSession,
    billing_windows: list[BillingWindow],
    now: datetime,
    *,
    link: tuple[str, str | None],
    money: tuple[int, int],
) -> HostSessionOut:
    """`session_out` with what only the host's list shows: the link's code and label, and
    what was captured and refunded (`money`, cents from the ledger)."""
    return HostSessionOut(
        **session_out(session, billing_windows, now).model_dump(),
        link_code=link[0],
        link_label=link[1],
        charged=format_cents(money[0]),
        refunded=format_cents(money[1]),
    )


def authentication_out(pending: PendingAuthentication | None) -> PaymentAuthentication | None:
    if pending is None:
        return None
    return PaymentAuthentication(
        window=pending.window,
        client_secret=pending.client_secret,
        next_action_url=pending.next_action_url,
    )


def _away(session: CallSession) -> str | None:
    if session.state != SessionState.PAUSED:
        return None
    return "host" if session.host_connections == 0 else "guest"


def _released(window: BillingWindow) -> int:
    return window.held_cents - window.captured_cents if window.state in SETTLED else 0


def charges(billing_windows: list[BillingWindow]) -> Charges:
    return Charges(
        windows=[
            WindowCharge(
                number=w.number,
                state=w.state,
                held=format_cents(w.held_cents),
                captured=format_cents(w.captured_cents),
                released=format_cents(_released(w)),
            )
            for w in billing_windows
        ],
        totals=ChargeTotals(
            held=format_cents(sum(w.held_cents for w in billing_windows)),
            captured=format_cents(sum(w.captured_cents for w in billing_windows)),
            released=format_cents(sum(_released(w) for w in billing_windows)),
            platform_fee=format_cents(sum(w.fee_cents for w in billing_windows)),
        ),
    )


def receipt(
    session: CallSession,
    billing_windows: list[BillingWindow],
    *,
    host_display_name: str,
    captured_cents: int,
    refunded_cents: int,
    receipt_url: str | None = None,
) -> Receipt:
    terms = CallTerms.of(session)
    went_live = session.went_live_at is not None
    return Receipt(
        session_id=session.id,
        host_display_name=host_display_name,
        guest_name=session.guest_name,
        currency=terms.currency.upper(),
        rate_per_minute=format_cents(terms.rate_cents),
        state=session.state,
        went_live_at=session.went_live_at,
        ended_at=session.ended_at,
        live_seconds=session.banked_live_ms // 1000,
        billed_minutes=terms.billed_minutes(session.banked_live_ms, went_live=went_live),
        terms=terms_out(terms),
        windows=[
            ReceiptWindow(
                number=w.number,
                minutes_covered=w.minutes,
                held=format_cents(w.held_cents),
                captured=format_cents(w.captured_cents),
                released=format_cents(_released(w)),
            )
            for w in billing_windows
            if w.held_cents
        ],
        total_charged=format_cents(captured_cents),
        refunded=format_cents(refunded_cents),
        card_brand=session.card_brand,
        card_last4=session.card_last4,
        created_at=session.created_at,
        receipt_url=receipt_url,
    )
