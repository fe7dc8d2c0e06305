"""Every change of a billing window's row that starts or abandons a provider action.

Sessions never write windows themselves; they ask here. Each action is written down
(`begin_action`) before the provider is called: the engine's crash-safety rests on it.
"""

from __future__ import annotations

from datetime import datetime

from vidivo.calls.actions import ProviderAction
from vidivo.calls.models import BillingWindow, WindowState
from vidivo.calls.terms import CallTerms
from vidivo.core.db import new_id


def first_window(session_id: str, terms: CallTerms, now: datetime) -> BillingWindow:
    """Window 1, its hold requested: made with the call, before the provider is asked."""
    window = BillingWindow(
        id=new_id(),
        session_id=session_id,
        number=1,
        start_minute=0,
        minutes=terms.first_window_minutes(),
        created_at=now,
    )
    begin_action(window, ProviderAction.HOLD, terms.cents_for(window.minutes), now)
    return window


def next_window(last: BillingWindow, minutes: int, now: datetime) -> BillingWindow:
    return BillingWindow(
        id=new_id(),
        session_id=last.session_id,
        number=last.number + 1,
        state=WindowState.PLANNED,
        start_minute=last.start_minute + last.minutes,
        minutes=minutes,
        pending_attempt=0,
        created_at=now,
        updated_at=now,
    )


def begin_action(
    window: BillingWindow,
    action: ProviderAction,
    amount_cents: int,
    now: datetime,
    attempt: int = 0,
) -> None:
    window.state = action.in_flight_state
    window.pending_action = action
    window.pending_attempt = attempt
    window.pending_guest_present = action.with_guest_present(window.number)
    window.pending_amount_cents = amount_cents
    window.decline_code = None
    window.retry_at = None
    window.updated_at = now


def retry_on_new_card(
    window: BillingWindow, terms: CallTerms, covered_minutes: int, now: datetime
) -> None:
    """A declined renewal tried again on the guest's new card, under a new key."""
    window.hold_attempts += 1
    window.minutes = terms.next_window_minutes(covered_minutes=covered_minutes)
    begin_action(
        window,
        ProviderAction.HOLD_CARD,
        terms.cents_for(window.minutes),
        now,
        attempt=window.hold_attempts,
    )


def abandon_hold_request(window: BillingWindow) -> None:
    """A start that failed before its first hold: the request is over, nothing is held."""
    if window.state == WindowState.AUTHORIZING:
        window.state = WindowState.DECLINED
        window.pending_action = None
