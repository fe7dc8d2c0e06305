"""A call's live time on the engine's millisecond clock, and how far its holds reach."""

from __future__ import annotations

from datetime import datetime, timedelta

from vidivo.calls.models import COVERING, BillingWindow, CallSession, SessionState

MS_PER_MINUTE = 60_000


def live_ms(session: CallSession, now: datetime) -> int:
    running = 0
    if session.live_since is not None:
        running = max(0, int((now - session.live_since) / timedelta(milliseconds=1)))
    return session.banked_live_ms + running


def bank_live_time(session: CallSession, now: datetime, cap_ms: int | None = None) -> None:
    total = live_ms(session, now)
    session.banked_live_ms = total if cap_ms is None else min(total, cap_ms)
    session.live_since = None


def coverage_minutes(session: CallSession, billing_windows: list[BillingWindow]) -> int:
    """Live minutes the call may run: what holds cover, never past the guest's max spend."""
    covered = sum(w.minutes for w in billing_windows if w.state in COVERING)
    return covered if session.max_minutes is None else min(covered, session.max_minutes)


def coverage_ends_at(
    session: CallSession, billing_windows: list[BillingWindow], now: datetime
) -> datetime | None:
    """When, at the running clock, live time reaches what the holds cover."""
    if session.state != SessionState.LIVE:
        return None
    remaining = coverage_minutes(session, billing_windows) * MS_PER_MINUTE - live_ms(session, now)
    return now + timedelta(milliseconds=max(0, remaining))


def begin_ending(
    session: CallSession, now: datetime, reason: str, cap_ms: int | None = None
) -> None:
    if session.state in (SessionState.LIVE, SessionState.PAUSED):
        bank_live_time(session, now, cap_ms)
    session.state = SessionState.ENDING
    session.end_reason = session.end_reason or reason
    session.paused_at = None
    session.next_action_at = now
