"""The billing engine: advances a call's windows through the provider, crash-safely.

Every provider action is written to the database (window state + action) *before* the call
and its outcome recorded after it, each in its own transaction. A worker that dies between
the two finds the action still in flight and performs it again with the same idempotency
key, `session:{id}:window:{n}:{action}`: the provider answers with the first outcome, so
nothing is captured twice and no release is forgotten.

What each window holds and captures, and the fee, come from the call's own terms
(`CallTerms`, frozen at its start); how much time is billed comes from its meter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiolimiter import AsyncLimiter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from vidivo.auth.models import User
from vidivo.calls import letters, metrics, repository, windows
from vidivo.calls.actions import ProviderAction, idempotency_key
from vidivo.calls.events import CallEvent, Ended, Ending, IncomingCallGone, LinkUseReturned
from vidivo.calls.models import (
    FINAL_STATES,
    IN_FLIGHT,
    UNSETTLED,
    BillingWindow,
    CallSession,
    SessionState,
    WindowState,
)
from vidivo.calls.outcomes import record_outcome
from vidivo.calls.receipt_links import ReceiptLinks
from vidivo.calls.terms import MS_PER_MINUTE, CallTerms
from vidivo.calls.timeline import begin_ending, billed_ms, coverage_minutes, reachable_ms
from vidivo.core.clock import Clock
from vidivo.core.hub import Hub
from vidivo.core.logs import logged_call_session
from vidivo.links import service as links
from vidivo.links.public_cache import PublicLinkCache
from vidivo.mail.letters import queue_letter
from vidivo.mail.service import Mailer
from vidivo.payments.provider import (
    Hold,
    HoldRequest,
    InvalidPaymentRequest,
    PaymentError,
    PaymentProvider,
)
from vidivo.payouts import service as payouts

log = logging.getLogger("vidivo.billing")
MAX_STEPS_PER_ADVANCE = 50


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


@dataclass(frozen=True)
class PreparedCall:
    """A provider call with everything it needs, read in the transaction that planned it."""

    step: ProviderStep
    request: HoldRequest
    amount_cents: int
    fee_cents: int
    hold_id: str | None
    payee_ready: bool


class BillingEngine:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        provider: PaymentProvider,
        clock: Clock,
        hub: Hub,
        *,
        timings: EngineTimings | None = None,
        provider_requests_per_second: int = 90,
        public_links: PublicLinkCache | None = None,
        mailer: Mailer | None = None,
        receipt_links: ReceiptLinks | None = None,
    ) -> None:
        self._factory = factory
        self._receipt_links = receipt_links
        self._provider = provider
        self._clock = clock
        self._hub = hub
        self.timings = timings or EngineTimings()
        # Paces this process's provider calls under the provider's rate limit (Stripe allows
        # about 100/s in live mode): a burst of renewals waits its turn instead of being
        # refused with 429s.
        self._public_links = public_links or PublicLinkCache(0)
        self._pace = AsyncLimiter(provider_requests_per_second, time_period=1)
        self._mailer = mailer
        self._mail_tasks: set[asyncio.Task[int]] = set()

    async def advance(self, session_id: str) -> None:
        """Do everything now due for the session: transitions, then provider steps."""
        with logged_call_session(session_id):
            await self._advance(session_id)

    async def _advance(self, session_id: str) -> None:
        for _ in range(MAX_STEPS_PER_ADVANCE):
            try:
                call, events = await self._plan(session_id)
            except (StaleDataError, IntegrityError):
                # Another process (an API request, a worker) changed the session or planned
                # the same window meanwhile: plan again from what is stored now.
                continue
            await self._publish(session_id, events)
            if any(isinstance(event, Ended) for event in events):
                self.send_mail()  # the receipt, queued with the end
            if call is None:
                return
            await self._perform(call)
        log.warning("session %s still had work after %d steps", session_id, MAX_STEPS_PER_ADVANCE)

    async def _publish(self, session_id: str, events: list[CallEvent]) -> None:
        for event in events:
            if isinstance(event, LinkUseReturned):  # for the link caches, not the sockets
                await self._public_links.changed(self._hub, code=event.code)
            elif isinstance(event, IncomingCallGone):
                await self._hub.publish(f"host:{event.host_id}", event.message())
            else:
                await self._hub.publish(session_id, event.message())

    # Planning: one transaction that applies due transitions and picks the next provider call.

    async def _plan(self, session_id: str) -> tuple[PreparedCall | None, list[CallEvent]]:
        async with self._factory() as db:
            session = await db.get(CallSession, session_id, populate_existing=True)
            if session is None or session.state in FINAL_STATES:
                return None, []
            billing_windows = await repository.windows_of(db, session_id)
            now = self._clock.now()
            events: list[CallEvent] = []
            step = self._in_flight_step(session, billing_windows, now)
            if step is None and not any(w.state in IN_FLIGHT for w in billing_windows):
                self._apply_time(session, billing_windows, now, events)
                step = self._next_window_action(db, session, billing_windows, now, events)
                if step is None and session.state == SessionState.ENDING:
                    self._finish(session, billing_windows, now, events)
                    if session.state == SessionState.ENDED:
                        await self._queue_receipt(db, session, billing_windows)
                    if session.state in FINAL_STATES and session.went_live_at is None:
                        await self._give_back_use(db, session, events)
            session.next_action_at = self._next_action_at(session, billing_windows, now, step)
            call = None
            if step is not None:
                window = next(w for w in billing_windows if w.id == step.window_id)
                call = await self._prepare(db, session, window, step)
            await db.commit()
            return call, events

    async def _prepare(
        self, db: AsyncSession, session: CallSession, window: BillingWindow, step: ProviderStep
    ) -> PreparedCall:
        amount = window.pending_amount_cents or 0
        request = HoldRequest(
            amount_cents=amount,
            customer_id=session.customer_id or "",
            payment_method_id=session.payment_method_id,
            destination_account_id=session.destination_account_id,
            off_session=not window.pending_guest_present,
            description=f"Vidivo call {session.id}, window {window.number}",
            metadata={
                "session_id": session.id,
                "window": str(window.number),
                "host_id": session.host_id,
            },
        )
        # A host whose payout account was disabled meanwhile takes no new holds.
        payee_ready = not step.action.places_hold or await payouts.charges_enabled(
            db, session.host_id
        )
        return PreparedCall(
            step=step,
            request=request,
            amount_cents=amount,
            fee_cents=CallTerms.of(session).fee_cents(amount),
            hold_id=window.provider_hold_id,
            payee_ready=payee_ready,
        )

    @staticmethod
    async def _give_back_use(
        db: AsyncSession, session: CallSession, events: list[CallEvent]
    ) -> None:
        if session.use_consumed:
            code = await links.give_back_use(db, session.link_id)
            session.use_consumed = False
            # An exhausted link may be usable again: instances drop its cached public view.
            events.append(LinkUseReturned(code))

    def _in_flight_step(
        self, session: CallSession, billing_windows: list[BillingWindow], now: datetime
    ) -> ProviderStep | None:
        for window in billing_windows:
            if window.state in IN_FLIGHT and (window.retry_at is None or window.retry_at <= now):
                assert window.pending_action is not None
                return _step(session, window, ProviderAction(window.pending_action))
        return None

    def _apply_time(
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

    def _next_window_action(
        self,
        db: AsyncSession,
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
            return self._maybe_renew(db, session, billing_windows, now)
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
        db: AsyncSession,
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
        db.add(window)
        billing_windows.append(window)
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
        return _step(session, window, action)

    async def _queue_receipt(
        self, db: AsyncSession, session: CallSession, billing_windows: list[BillingWindow]
    ) -> None:
        """The guest's receipt, in the transaction that ends the call: only when money was
        taken (a call that went live and captured something)."""
        lines = [
            letters.ReceiptLine(
                w.number, CallTerms.of(session).minutes_in(w.captured_cents), w.captured_cents
            )
            for w in billing_windows
            if w.captured_cents
        ]
        if not lines or session.ended_at is None:
            return
        host = await db.get_one(User, session.host_id)
        letter = letters.receipt(
            host_name=host.display_name,
            guest_name=session.guest_name,
            rate_cents=session.rate_cents,
            window_minutes=session.window_minutes,
            lines=lines,
            ended_at=session.ended_at,
            card=letters.card_words(session.card_brand, session.card_last4),
            receipt_url=self._receipt_links.url(session.id) if self._receipt_links else None,
        )
        queue_letter(db, self._clock, session.guest_email, letter)

    def send_mail(self) -> None:
        """Send what the outbox holds, after the answer (the outbox retries what fails)."""
        if self._mailer is None:
            return
        task = asyncio.create_task(self._mailer.deliver_pending())
        self._mail_tasks.add(task)
        task.add_done_callback(self._mail_tasks.discard)

    def _finish(
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

    def _next_action_at(
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

    # Performing: the provider call outside any transaction, then its outcome recorded.

    async def _perform(self, call: PreparedCall) -> None:
        step = call.step
        outcome: Hold | PaymentError
        if not call.payee_ready:
            await self._record(
                step, InvalidPaymentRequest("The host's payout account cannot take charges now.")
            )
            return
        try:
            await self._pace.acquire()
            if step.action.places_hold:
                outcome = await self._provider.place_hold(
                    call.request, idempotency_key=step.idempotency_key
                )
            elif step.action == ProviderAction.CAPTURE:
                assert call.hold_id is not None
                outcome = await self._provider.capture_hold(
                    call.hold_id,
                    amount_cents=call.amount_cents,
                    application_fee_cents=call.fee_cents,
                    idempotency_key=step.idempotency_key,
                )
            else:
                assert call.hold_id is not None
                outcome = await self._provider.cancel_hold(
                    call.hold_id, idempotency_key=step.idempotency_key
                )
        except PaymentError as error:
            outcome = error
        metrics.count_provider_call(step.action, outcome)
        if step.due_at is not None and metrics.outcome_of(outcome) == "succeeded":
            late = self._clock.now() - step.due_at
            metrics.HOLD_LATENESS_SECONDS.observe(max(late.total_seconds(), 0.0))
        log.info("provider step %s: %s", step.idempotency_key, _outcome_text(outcome))
        await self._record(step, outcome)

    async def _record(self, step: ProviderStep, outcome: Hold | PaymentError) -> None:
        for _ in range(5):
            try:
                await self._record_once(step, outcome)
                return
            except (StaleDataError, IntegrityError):
                # The session changed meanwhile, or another process (a worker racing an API
                # request) recorded this very outcome first (the ledger's key is unique):
                # look again; the next pass sees it recorded and stops.
                continue
        log.error("could not record %s for session %s", step.action, step.session_id)

    async def _record_once(self, step: ProviderStep, outcome: Hold | PaymentError) -> None:
        events: list[CallEvent] = []
        async with self._factory() as db:
            window = await db.get_one(BillingWindow, step.window_id, populate_existing=True)
            session = await db.get_one(CallSession, step.session_id, populate_existing=True)
            recorded = (window.pending_action, window.pending_attempt) != (
                step.action,
                step.attempt,
            )
            if recorded or window.state not in IN_FLIGHT | {WindowState.AUTHENTICATING}:
                return  # recorded already (a concurrent worker, or a replay)
            reconciled = outcome
            if isinstance(outcome, InvalidPaymentRequest) and window.provider_hold_id:
                reconciled = await self._reconcile(window.provider_hold_id, outcome)
            billing_windows = await repository.windows_of(db, session.id)
            record_outcome(
                db,
                session,
                billing_windows,
                window,
                step,
                reconciled,
                self._clock.now(),
                events,
            )
            amounts = metrics.pending_amounts(db)
            await db.commit()
        metrics.count_committed(amounts)
        await self._publish(step.session_id, events)

    async def check_authentication(self, session_id: str) -> None:
        """The guest says the bank's challenge is done: the provider's record of the waiting
        hold settles it (authorized, refused, or still waiting). A provider failure is raised
        to the guest, who may ask again; nothing is recorded then."""
        async with self._factory() as db:
            session = await db.get_one(CallSession, session_id, populate_existing=True)
            billing_windows = await repository.windows_of(db, session_id)
            waiting = [w for w in billing_windows if w.state == WindowState.AUTHENTICATING]
            if not waiting:
                return
            window = waiting[0]
            assert window.pending_action is not None and window.provider_hold_id is not None
            step = _step(session, window, ProviderAction(window.pending_action))
            hold_id = window.provider_hold_id
        await self._pace.acquire()
        hold = await self._provider.retrieve_hold(hold_id)
        await self._record(step, hold)
        await self.advance(session_id)

    async def _reconcile(self, hold_id: str, error: PaymentError) -> Hold | PaymentError:
        """A capture or cancel the provider refuses may already be done (or the hold lapsed):
        the provider's own record of the hold settles what happened."""
        try:
            await self._pace.acquire()
            hold = await self._provider.retrieve_hold(hold_id)
        except PaymentError as failure:
            metrics.count_provider_call("retrieve", failure)
            return error
        metrics.count_provider_call("retrieve", hold)
        return hold


def _step(session: CallSession, window: BillingWindow, action: ProviderAction) -> ProviderStep:
    attempt = window.pending_attempt
    return ProviderStep(
        session.id,
        window.id,
        action,
        attempt,
        idempotency_key(session.id, window.number, action, attempt),
    )


def _outcome_text(outcome: Hold | PaymentError) -> str:
    if isinstance(outcome, Hold):
        return f"hold {outcome.id} {outcome.status}"
    return f"{type(outcome).__name__}: {outcome.message}"
