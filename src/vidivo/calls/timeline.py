"""A call's time as its meter and holds see it: what is billed, what the holds cover, the end."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from vidivo.calls.meter import Meter
from vidivo.calls.models import COVERING, BillingWindow, CallSession, SessionState
from vidivo.calls.terms import MS_PER_MINUTE, CallTerms


def billed_ms(session: CallSession, now: datetime) -> int:
    """Metered time billed for sure as of `now`."""
    return Meter.of(session).billed_ms(now)


def reachable_ms(session: CallSession, now: datetime) -> int:
    """Metered time if a pause resumed now: what the holds must cover."""
    return Meter.of(session).reachable_ms(now)


def coverage_minutes(session: CallSession, billing_windows: Iterable[BillingWindow]) -> int:
    """Metered minutes the call may run: what holds cover, never past the guest's cap."""
    held = sum(w.minutes for w in billing_windows if w.state in COVERING)
    return CallTerms.of(session).covered_minutes(held)


def coverage_ends_at(
    session: CallSession, billing_windows: list[BillingWindow], now: datetime
) -> datetime | None:
    """When, at the running clock, metered time reaches what the holds cover."""
    if session.state not in (SessionState.LIVE, SessionState.PAUSED):
        return None
    covered_ms = coverage_minutes(session, billing_windows) * MS_PER_MINUTE
    return now + timedelta(milliseconds=max(0, covered_ms - reachable_ms(session, now)))


def paid_until(
    session: CallSession, billing_windows: list[BillingWindow], now: datetime
) -> datetime | None:
    """The latest moment the call's holds can carry it to, as things stand now: for a call
    still waiting, as if it went live at the last moment the host may join."""
    covered = timedelta(minutes=coverage_minutes(session, billing_windows))
    if session.state in (SessionState.LIVE, SessionState.PAUSED):
        return coverage_ends_at(session, billing_windows, now)
    if session.state in (SessionState.PENDING_PAYMENT, SessionState.WAITING_FOR_HOST):
        return max(now, session.waiting_deadline or now) + covered
    return None


def record_presence(session: CallSession, now: datetime, cap_ms: int | None = None) -> None:
    """Move a live or paused call's meter to the parties' connections as counted now."""
    Meter.of(session).presence(
        now,
        host_present=session.host_connections > 0,
        guest_present=session.guest_connections > 0,
        cap_ms=cap_ms,
    ).store_on(session)


def begin_ending(
    session: CallSession, now: datetime, reason: str, cap_ms: int | None = None
) -> None:
    if session.state in (SessionState.LIVE, SessionState.PAUSED):
        Meter.of(session).end(now, cap_ms).store_on(session)
    session.state = SessionState.ENDING
    session.end_reason = session.end_reason or reason
    session.paused_at = None
    session.next_action_at = now
