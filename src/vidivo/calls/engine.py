"""The billing engine: advances a call's windows through the provider, crash-safely.

Every provider action is written to the database (window state + action) *before* the call,
and its outcome recorded after it. A worker that dies between the two finds the action still
in flight and performs it again with the same idempotency key,
`session:{id}:window:{n}:{action}`: the provider answers with the first outcome, so nothing
is captured twice and no release is forgotten.

An outcome is recorded by the plan that picks the call's next action (and, for the worker,
gives its lease back when nothing is left): two plans of ours per provider action, not
three. A crash between the provider's answer and that plan's save is the crash above.

The call and its windows are read from Core rows and only what a plan changed is written back
(`engine_queries`): the ORM's loading and unit of work were most of an action's CPU. On
PostgreSQL a plan is two autocommitted statements on asyncpg's own connection, its read and a
save whose writes all hang on the call's version check, so a lost race writes nothing and no
BEGIN or COMMIT goes over the wire; a plan that ends the call (a receipt, the link's use
given back) is made again in one transaction.

What each window holds and captures, and the fee, come from the call's own terms
(`CallTerms`, frozen at its start); how much time is billed comes from its meter. What is due
and when is decided in `planning`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from vidivo.auth.models import User
from vidivo.calls import engine_queries, letters, metrics, repository
from vidivo.calls.actions import ProviderAction
from vidivo.calls.events import CallEvent, Ended, IncomingCallGone, LinkUseReturned
from vidivo.calls.models import (
    FINAL_STATES,
    IN_FLIGHT,
    BillingWindow,
    CallSession,
    SessionState,
    WindowState,
)
from vidivo.calls.outcomes import record_outcome
from vidivo.calls.planning import EngineTimings, Planner, ProviderStep, step_of
from vidivo.calls.receipt_links import ReceiptLinks
from vidivo.calls.terms import CallTerms
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

__all__ = ["BillingEngine", "EngineTimings", "ProviderStep"]
log = logging.getLogger("vidivo.billing")
MAX_STEPS_PER_ADVANCE = 50


@dataclass(frozen=True)
class PreparedCall:
    """A provider call with everything it needs, read by the plan that made it."""

    step: ProviderStep
    request: HoldRequest
    amount_cents: int
    fee_cents: int
    hold_id: str | None
    payee_ready: bool


@dataclass(frozen=True)
class Performed:
    """A provider's answer, not yet recorded."""

    step: ProviderStep
    outcome: Hold | PaymentError


class _EndsTheCall(Exception):
    """A plan made alone (`engine_queries.DriverPlans`) reached the call's end."""


@dataclass(frozen=True)
class _Decided:
    planned: Planned
    # The worker whose lease the plan gives back after its save (not folded into its UPDATE).
    release_after_save: str | None


@dataclass
class Planned:
    call: PreparedCall | None
    events: list[CallEvent]
    lease_released: bool = False


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
        # PostgreSQL: most plans are made alone, past SQLAlchemy (`engine_queries.DriverPlans`).
        self._driver_plans = engine_queries.DriverPlans.of(factory.kw["bind"])
        self._receipt_links = receipt_links
        self._provider = provider
        self._clock = clock
        self._hub = hub
        self.timings = timings or EngineTimings()
        self._planner = Planner(self.timings)
        # Paces this process's provider calls under the provider's rate limit (Stripe allows
        # about 100/s in live mode): a burst of renewals waits its turn instead of being
        # refused with 429s.
        self._public_links = public_links or PublicLinkCache(0)
        self._pace = AsyncLimiter(provider_requests_per_second, time_period=1)
        self._mailer = mailer
        self._mail_tasks: set[asyncio.Task[int]] = set()

    async def advance(self, session_id: str, *, lease_owner: str | None = None) -> bool:
        """Do everything now due for the session: transitions, then provider steps. With a
        `lease_owner`, the worker's lease is given back with the last plan; whether it was
        (if not, the worker gives it back itself)."""
        with logged_call_session(session_id):
            return await self._advance(session_id, lease_owner)

    async def _advance(self, session_id: str, lease_owner: str | None) -> bool:
        done: Performed | None = None
        for _ in range(MAX_STEPS_PER_ADVANCE):
            try:
                planned = await self._plan(session_id, done, lease_owner)
            except (StaleDataError, IntegrityError):
                # Another process (an API request, a worker) changed the session, planned the
                # same window or recorded this very outcome meanwhile (the ledger's key is
                # unique): record and plan again from what is stored now.
                continue
            done = None
            await self._publish(session_id, planned.events)
            if any(isinstance(event, Ended) for event in planned.events):
                self.send_mail()  # the receipt, queued with the end
            if planned.call is None:
                return planned.lease_released
            done = await self._perform(planned.call)
        if done is not None:
            await self._record(done)
        log.warning("session %s still had work after %d steps", session_id, MAX_STEPS_PER_ADVANCE)
        return False

    async def _publish(self, session_id: str, events: list[CallEvent]) -> None:
        for event in events:
            if isinstance(event, LinkUseReturned):  # for the link caches, not the sockets
                await self._public_links.changed(self._hub, code=event.code)
            elif isinstance(event, IncomingCallGone):
                await self._hub.publish(f"host:{event.host_id}", event.message())
            else:
                await self._hub.publish(session_id, event.message())

    # Planning: one read and one save (a transaction, or on PostgreSQL two autocommitted
    # statements) that record the last outcome, apply due transitions and pick the next
    # provider call.

    async def _plan(
        self, session_id: str, done: Performed | None, lease_owner: str | None
    ) -> Planned:
        try:
            return await self._plan_once(session_id, done, lease_owner, may_go_alone=True)
        except _EndsTheCall:  # nothing was written: planned again, in one transaction
            return await self._plan_once(session_id, done, lease_owner, may_go_alone=False)

    async def _plan_once(
        self,
        session_id: str,
        done: Performed | None,
        lease_owner: str | None,
        *,
        may_go_alone: bool,
    ) -> Planned:
        if may_go_alone and self._driver_plans is not None:
            return await self._plan_alone(self._driver_plans, session_id, done, lease_owner)
        async with self._factory() as db:
            stored = await engine_queries.call_with_windows(db, session_id)
            if stored is None:
                return Planned(None, [])
            decided = await self._decide(stored, done, lease_owner, db)
            await engine_queries.save(db, stored)
            if decided.release_after_save:  # after the save: it was the last write
                await repository.release_lease(db, session_id, decided.release_after_save)
            await db.commit()
        metrics.count_committed(metrics.amounts_of(stored.ledger))
        return decided.planned

    async def _plan_alone(
        self,
        plans: engine_queries.DriverPlans,
        session_id: str,
        done: Performed | None,
        lease_owner: str | None,
    ) -> Planned:
        """A plan in two autocommitted statements (PostgreSQL): its read and its save."""
        stored = await plans.call_with_windows(session_id)
        if stored is None:
            return Planned(None, [])
        decided = await self._decide(stored, done, lease_owner, None)
        await plans.save(stored)
        if decided.release_after_save:
            await plans.release_lease(session_id, decided.release_after_save)
        metrics.count_committed(metrics.amounts_of(stored.ledger))
        return decided.planned

    async def _decide(
        self,
        stored: engine_queries.StoredCall,
        done: Performed | None,
        lease_owner: str | None,
        db: AsyncSession | None,
    ) -> _Decided:
        """Record the last outcome, apply what fell due and pick the next provider call, on
        the call as read. Without `db` (a plan made alone) a plan that would end the call
        raises `_EndsTheCall`, having written nothing."""
        events: list[CallEvent] = []
        if done is not None:
            await self._apply_outcome(stored, done, events)
        call = None
        if stored.session.state not in FINAL_STATES:
            call = await self._plan_next(db, stored, events)
        owner = lease_owner if call is None else None  # the worker's lease ends here
        folded = owner is not None and engine_queries.lease_release_folded(stored, owner)
        return _Decided(Planned(call, events, owner is not None), None if folded else owner)

    async def _plan_next(
        self,
        db: AsyncSession | None,
        stored: engine_queries.StoredCall,
        events: list[CallEvent],
    ) -> PreparedCall | None:
        session, billing_windows = stored.session, stored.windows
        now = self._clock.now()
        planner = self._planner
        step = planner.in_flight_step(session, billing_windows, now)
        if step is None and not any(w.state in IN_FLIGHT for w in billing_windows):
            planner.apply_time(session, billing_windows, now, events)
            step = planner.next_window_action(session, billing_windows, now, events)
            if step is None and session.state == SessionState.ENDING:
                if db is None:  # the receipt and the link's use are written with the end
                    raise _EndsTheCall()
                planner.finish(session, billing_windows, now, events)
                if session.state == SessionState.ENDED:
                    await self._queue_receipt(db, session, billing_windows)
                if session.state in FINAL_STATES and session.went_live_at is None:
                    await self._give_back_use(db, session, events)
        session.next_action_at = planner.next_action_at(session, billing_windows, now, step)
        if step is None:
            return None
        window = next(w for w in billing_windows if w.id == step.window_id)
        # A host whose payout account was disabled meanwhile takes no new holds.
        payee_ready = stored.payee_ready or not step.action.places_hold
        return self._prepare(session, window, step, payee_ready)

    @staticmethod
    def _prepare(
        session: CallSession, window: BillingWindow, step: ProviderStep, payee_ready: bool
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

    # Performing: the provider call outside any transaction; its outcome is recorded by the
    # next plan.

    async def _perform(self, call: PreparedCall) -> Performed:
        step = call.step
        outcome: Hold | PaymentError
        if not call.payee_ready:
            refusal = InvalidPaymentRequest("The host's payout account cannot take charges now.")
            return Performed(step, refusal)
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
        return Performed(step, outcome)

    async def _record(self, done: Performed) -> None:
        """An outcome recorded on its own (no next plan follows it here)."""
        for _ in range(5):
            try:
                await self._record_once(done)
                return
            except (StaleDataError, IntegrityError):
                # The session changed meanwhile, or another process recorded this very
                # outcome first: look again; the next pass sees it recorded and stops.
                continue
        log.error("could not record %s for session %s", done.step.action, done.step.session_id)

    async def _record_once(self, done: Performed) -> None:
        events: list[CallEvent] = []
        async with self._factory() as db:
            stored = await engine_queries.call_with_windows(db, done.step.session_id)
            if stored is None:
                return
            await self._apply_outcome(stored, done, events)
            await engine_queries.save(db, stored)
            await db.commit()
        metrics.count_committed(metrics.amounts_of(stored.ledger))
        await self._publish(done.step.session_id, events)

    async def _apply_outcome(
        self, stored: engine_queries.StoredCall, done: Performed, events: list[CallEvent]
    ) -> None:
        step, outcome = done.step, done.outcome
        window = next((w for w in stored.windows if w.id == step.window_id), None)
        if window is None:
            return
        recorded = (window.pending_action, window.pending_attempt) != (step.action, step.attempt)
        if recorded or window.state not in IN_FLIGHT | {WindowState.AUTHENTICATING}:
            return  # recorded already (a concurrent worker, or a replay)
        if isinstance(outcome, InvalidPaymentRequest) and window.provider_hold_id:
            outcome = await self._reconcile(window.provider_hold_id, outcome)
        record_outcome(
            stored.ledger,
            stored.session,
            stored.windows,
            window,
            step,
            outcome,
            self._clock.now(),
            events,
        )

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
            step = step_of(session, window, ProviderAction(window.pending_action))
            hold_id = window.provider_hold_id
        await self._pace.acquire()
        hold = await self._provider.retrieve_hold(hold_id)
        await self._record(Performed(step, hold))
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


def _outcome_text(outcome: Hold | PaymentError) -> str:
    if isinstance(outcome, Hold):
        return f"hold {outcome.id} {outcome.status}"
    return f"{type(outcome).__name__}: {outcome.message}"
