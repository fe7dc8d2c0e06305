"""What is due for a call now: the transitions time brings, and the next provider action.

Plain rules over a call and its windows, loaded by the engine in the transaction that plans
(no I/O here). An action is written down on its window (`windows.begin_action`) before the
provider is asked: the engine's crash-safety rests on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from vidivo.calls import windows
from vidivo.calls.actions import ProviderAction, idempotency_key
from vidivo.calls.events import CallEvent, Ended, Ending, IncomingCallGone
from vidivo.calls.models import (
    FINAL_STATES,
    IN_FLIGHT,
    UNSETTLED,
    BillingWindow,
    CallSession,
    SessionState,
    WindowState,
)
from vidivo.calls.terms import MS_PER_MINUTE, CallTerms
from vidivo.calls.timeline import begin_ending, billed_ms, coverage_minutes, reachable_ms


@dataclass(frozen=True)
class EngineTimings:
    host_join_timeout: timedelta = timedelta(minutes=10)
    # A start whose first hold succeeded but never got its use recorded (a crash).
    abandoned_start: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ProviderStep:
    session_id: str
    window_id: str
    action: ProviderAction
    attempt: int
    idempotency_key: str
    # A renewal's hold: when it fell due (the metrics measure how late it was placed).
    due_at: datetime | None = None


class Planner:
    def __init__(self, timings: EngineTimings) -> None:
        self.timings = timings

    def in_flight_step(
        self, session: CallSession, billing_windows: list[BillingWindow], now: datetime
    ) -> ProviderStep | None:
        for window in billing_windows:
            if window.state in IN_FLIGHT and (window.retry_at is None or window.retry_at <= now):
                assert window.pending_action is not None
                return step_of(session, window, ProviderAction(window.pending_action))
        return None

    def apply_time(
        self,
        session: CallSession,
        billing_windows: list[BillingWindow],
        now: datetime,
        events: list[CallEvent],
    ) -> None:
        t = self.timings
        if session.state == SessionState.PENDING_PAYMENT:
            if now >= session.created_at + t.abandoned_start:
                asked = billing_windows[0].state == WindowState.AUTHENTICATING
                begin_ending(
                    session, now, "authentication_abandoned" if asked else "start_abandoned"
                )
        elif session.state == SessionState.WAITING_FOR_HOST:
            if session.waiting_deadline is not None and now >= session.waiting_deadline:
                begin_ending(session, now, "host_no_show")
        elif session.state in (SessionState.LIVE, SessionState.PAUSED):
            terms = CallTerms.of(session)
            grace = terms.reconnect_grace
            if session.paused_at is not None and now >= session.paused_at + grace:
                begin_ending(session, now, "reconnect_timeout")
                return self._announce_end(session, events)
            limit_ms = coverage_minutes(session, billing_windows) * MS_PER_MINUTE
            # A guest-side pause counts too: if the call resumed, that time would be billed.
            if reachable_ms(session, now) >= limit_ms:
                cap = terms.max_minutes
                reached_max = cap is not None and limit_ms >= cap * MS_PER_MINUTE
                begin_ending(session, now, "max_spend" if reached_max else "no_hold", limit_ms)
        self._announce_end(session, events)

    @staticmethod
    def _announce_end(session: CallSession, events: list[CallEvent]) -> None:
        if session.state == SessionState.ENDING:
            events.append(Ending(session.end_reason))
            if session.went_live_at is None:
                events.append(IncomingCallGone(session.host_id, session.id))

    def next_window_action(
        self,
        session: CallSession,
        billing_windows: list[BillingWindow],
        now: datetime,
        events: list[CallEvent],
    ) -> ProviderStep | None:
        if session.state in (SessionState.LIVE, SessionState.PAUSED):
            elapsed = billed_ms(session, now)
            for window in billing_windows:
                used_up = (window.start_minute + window.minutes) * MS_PER_MINUTE <= elapsed
                if window.state == WindowState.HELD and used_up:
                    # A window fully used is captured in full, right away.
                    return self._start(
                        session, window, ProviderAction.CAPTURE, window.held_cents, now
                    )
            return self._maybe_renew(session, billing_windows, now)
        if session.state == SessionState.ENDING:
            terms = CallTerms.of(session)
            for window in billing_windows:
                if window.state == WindowState.AUTHENTICATING:
                    # Never authorized: the waiting hold is cancelled, nothing is charged.
                    return self._start(session, window, ProviderAction.CANCEL, 0, now)
                if window.state != WindowState.HELD:
                    continue
                captured = terms.capture_cents(
                    start_minute=window.start_minute,
                    minutes=window.minutes,
                    metered_ms=session.banked_live_ms,
                    went_live=session.went_live_at is not None,
                )
                if captured:
                    return self._start(session, window, ProviderAction.CAPTURE, captured, now)
                return self._start(session, window, ProviderAction.CANCEL, 0, now)
        return None

    def _maybe_renew(
        self,
        session: CallSession,
        billing_windows: list[BillingWindow],
        now: datetime,
    ) -> ProviderStep | None:
        last = billing_windows[-1]
        if last.state in (WindowState.DECLINED, WindowState.AUTHENTICATING):
            return None  # the guest was warned, or is authenticating: the guest moves next
        terms = CallTerms.of(session)
        covered = coverage_minutes(session, billing_windows)
        minutes = terms.next_window_minutes(covered_minutes=covered)
        if minutes == 0:
            return None  # the spending cap is reached
        due_ms = covered * MS_PER_MINUTE - terms.renewal_lead_ms()
        reachable = reachable_ms(session, now)
        if reachable < due_ms:
            return None
        window = windows.next_window(last, minutes, now)
        billing_windows.append(window)  # inserted with the plan
        step = self._start(session, window, ProviderAction.HOLD, terms.cents_for(minutes), now)
        return dataclasses.replace(step, due_at=now - timedelta(milliseconds=reachable - due_ms))

    @staticmethod
    def _start(
        session: CallSession,
        window: BillingWindow,
        action: ProviderAction,
        amount_cents: int,
        now: datetime,
    ) -> ProviderStep:
        """Write the action down before doing it: the crash-safety of the whole engine."""
        windows.begin_action(window, action, amount_cents, now)
        return step_of(session, window, action)

    def finish(
        self,
        session: CallSession,
        billing_windows: list[BillingWindow],
        now: datetime,
        events: list[CallEvent],
    ) -> None:
        if any(w.state in IN_FLIGHT or w.state in UNSETTLED for w in billing_windows):
            return
        if session.went_live_at is not None:
            session.state = SessionState.ENDED
        elif session.end_reason == "host_no_show":
            session.state = SessionState.EXPIRED
        else:
            session.state = SessionState.DECLINED
        session.ended_at = now
        total = sum(w.captured_cents for w in billing_windows)
        events.append(Ended(session.state, session.end_reason, total))

    def next_action_at(
        self,
        session: CallSession,
        billing_windows: list[BillingWindow],
        now: datetime,
        step: ProviderStep | None,
    ) -> datetime | None:
        if step is not None or session.state == SessionState.ENDING:
            return now
        if session.state in FINAL_STATES:
            return None
        retries = [w.retry_at for w in billing_windows if w.state in IN_FLIGHT and w.retry_at]
        candidates: list[datetime] = list(retries)
        t = self.timings
        if session.state == SessionState.PENDING_PAYMENT:
            candidates.append(session.created_at + t.abandoned_start)
        elif session.state == SessionState.WAITING_FOR_HOST and session.waiting_deadline:
            candidates.append(session.waiting_deadline)
        elif session.state in (SessionState.LIVE, SessionState.PAUSED):
            terms = CallTerms.of(session)
            if session.paused_at:
                candidates.append(session.paused_at + terms.reconnect_grace)
            candidates += self._meter_thresholds(session, billing_windows, terms, now)
        return min(candidates) if candidates else None

    @staticmethod
    def _meter_thresholds(
        session: CallSession, billing_windows: list[BillingWindow], terms: CallTerms, now: datetime
    ) -> list[datetime]:
        """When the running meter next crosses a line: a window used up, the renewal lead,
        the end of what is held. A meter that does not run crosses none."""
        if session.live_since is None and session.guest_away_since is None:
            return []
        reachable = reachable_ms(session, now)
        covered_ms = coverage_minutes(session, billing_windows) * MS_PER_MINUTE
        thresholds = [covered_ms, covered_ms - terms.renewal_lead_ms()]
        if session.live_since is not None:  # billed time runs (no pause): the two agree
            thresholds += [
                (w.start_minute + w.minutes) * MS_PER_MINUTE
                for w in billing_windows
                if w.state == WindowState.HELD
            ]
        future = [x for x in thresholds if x > reachable]
        if not future:
            return [now]
        return [now + timedelta(milliseconds=min(future) - reachable)]


def step_of(session: CallSession, window: BillingWindow, action: ProviderAction) -> ProviderStep:
    attempt = window.pending_attempt
    return ProviderStep(
        session.id,
        window.id,
        action,
        attempt,
        idempotency_key(session.id, window.number, action, attempt),
    )
