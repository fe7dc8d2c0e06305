"""A started call's life: the host's answer, the parties' presence, a new card, the end;
the relay's deadline, a host's list of calls, and provider events about a call's holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.auth.models import User
from vidivo.auth.service import GuestPrincipal, Principal
from vidivo.calls import repository, windows
from vidivo.calls.access import ensure_host_of, ensure_may_view, ensure_party
from vidivo.calls.engine import BillingEngine
from vidivo.calls.errors import InvalidSessionState
from vidivo.calls.events import CardUpdated
from vidivo.calls.models import FINAL_STATES, CallSession, SessionState, WindowState
from vidivo.calls.repository import find_by_hold, load_session, windows_of
from vidivo.calls.start import (
    PendingAuthentication,
    pending_authentication,
    remember_card,
    start_error,
)
from vidivo.calls.terms import MS_PER_MINUTE, CallTerms
from vidivo.calls.timeline import begin_ending, coverage_minutes, paid_until, record_presence
from vidivo.core.clock import Clock
from vidivo.core.hub import Hub
from vidivo.core.pagination import CursorSigner, keyset_page
from vidivo.core.races import made_again_on_lost_race
from vidivo.mail.service import queue_email
from vidivo.payments.provider import PaymentError, PaymentProvider

# A change to one call, made on the call as read in its own transaction (at `now`).
Change = Callable[[AsyncSession, CallSession, datetime], Awaitable[None]]


class CallService:
    """A started call's life: the host's answer, the parties' presence, a new card, the end.
    Built once by the composition root with what it uses."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        clock: Clock,
        provider: PaymentProvider,
        engine: BillingEngine,
        hub: Hub,
    ) -> None:
        self._factory = factory
        self._clock = clock
        self._provider = provider
        self._engine = engine
        self._hub = hub

    async def _with_retry(self, session_id: str, change: Change) -> CallSession:
        """Apply `change(db, session, now)` in its own transaction, made again if the worker
        raced (its plan may land between this read and any flush: the change's own queries
        flush)."""

        async def once() -> CallSession:
            async with self._factory() as db:
                session = await load_session(db, session_id)
                await change(db, session, self._clock.now())
                await db.commit()
            return session

        return await made_again_on_lost_race(
            once, "The call changed too often to apply this; try again."
        )

    async def accept(self, session_id: str, principal: Principal) -> CallSession:
        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            ensure_host_of(session, principal)
            if session.state != SessionState.WAITING_FOR_HOST or session.host_accepted_at:
                raise InvalidSessionState("Only a call waiting for its host can be accepted.")
            session.host_accepted_at = now
            await _follow_presence(db, session, now)

        return await self._with_retry(session_id, change)

    async def decline(self, session_id: str, principal: Principal) -> CallSession:
        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            ensure_host_of(session, principal)
            if session.state != SessionState.WAITING_FOR_HOST or session.host_accepted_at:
                raise InvalidSessionState("Only a call waiting for its host can be declined.")
            begin_ending(session, now, "host_declined")

        return await self._with_retry(session_id, change)

    async def end(self, session_id: str, caller: Principal | GuestPrincipal) -> CallSession:
        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            ensure_party(session, caller)
            if session.state in FINAL_STATES or session.state == SessionState.ENDING:
                raise InvalidSessionState("This call has already ended.")
            if session.state == SessionState.PENDING_PAYMENT:
                raise InvalidSessionState("This call is still starting.")
            who = "guest" if isinstance(caller, GuestPrincipal) else "host"
            session.end_requested_by = who
            begin_ending(session, now, f"ended_by_{who}")

        return await self._with_retry(session_id, change)

    async def connected(self, session_id: str, role: str) -> tuple[str, CallSession]:
        """Count a peer's socket in; the state before and the session after."""
        before = ""

        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            nonlocal before
            before = session.state
            if role == "host":
                session.host_connections += 1
            else:
                session.guest_connections += 1
            await _follow_presence(db, session, now)

        session = await self._with_retry(session_id, change)
        return before, session

    async def disconnected(self, session_id: str, role: str) -> tuple[str, CallSession]:
        """Count a peer's socket out; the state before and the session after."""
        before = ""

        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            nonlocal before
            before = session.state
            if role == "host":
                session.host_connections = max(0, session.host_connections - 1)
            else:
                session.guest_connections = max(0, session.guest_connections - 1)
            await _follow_presence(db, session, now)

        session = await self._with_retry(session_id, change)
        return before, session

    async def replace_payment_method(
        self,
        session_id: str,
        caller: GuestPrincipal,
        payment_method_id: str,
    ) -> tuple[CallSession, PendingAuthentication | None]:
        async with self._factory() as db:
            session = await load_session(db, session_id)
            ensure_may_view(session, caller)
            if session.state not in (
                SessionState.LIVE,
                SessionState.PAUSED,
                SessionState.WAITING_FOR_HOST,
            ):
                raise InvalidSessionState("The card can only be changed during a call.")
            if (await windows_of(db, session_id))[-1].state == WindowState.AUTHENTICATING:
                raise InvalidSessionState("The card's bank is waiting for you: answer it first.")
            customer_id = session.customer_id
        assert customer_id is not None
        try:
            card = await self._provider.attach_payment_method(
                customer_id=customer_id,
                payment_method_id=payment_method_id,
                idempotency_key=f"session:{session_id}:attach:{payment_method_id}",
            )
        except PaymentError as error:
            raise start_error(error) from error

        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            billing_windows = await windows_of(db, session_id)
            if any(w.state == WindowState.AUTHORIZING for w in billing_windows):
                await db.refresh(session)  # as new as the windows (SQLite reads unisolated)
                if session.payment_method_id == payment_method_id:
                    return  # the same card again (a double click): its hold is under way
                # A hold being placed is asked again, if need be, with the call's card under
                # the same key: another card then would leave the first card's hold unknown.
                raise InvalidSessionState(
                    "A hold on your card is being placed right now: try again in a moment."
                )
            session.payment_method_id = payment_method_id
            remember_card(session, card)
            last = billing_windows[-1]
            if last.state == WindowState.DECLINED:
                # Try the declined renewal again, on the new card, under a new key.
                covered = coverage_minutes(session, billing_windows)
                windows.retry_on_new_card(last, CallTerms.of(session), covered, now)
            session.next_action_at = now

        session = await self._with_retry(session_id, change)
        await self._hub.publish(session_id, CardUpdated().message())
        await self._engine.advance(session_id)
        async with self._factory() as db:
            last = (await windows_of(db, session_id))[-1]
        if last.state == WindowState.AUTHENTICATING:  # the new card's bank asks the guest
            return session, await pending_authentication(self._provider, last)
        return session, None


async def _follow_presence(db: AsyncSession, session: CallSession, now: datetime) -> None:
    """The call's state and meter after a party's connection came or went (or the host
    accepted): live with both there, paused with either gone, the meter told either way."""
    both = session.host_connections > 0 and session.guest_connections > 0
    if session.state == SessionState.WAITING_FOR_HOST:
        if both and session.host_accepted_at:
            session.state = SessionState.LIVE
            session.went_live_at = now
            record_presence(session, now)
            session.next_action_at = now
        return
    if session.state not in (SessionState.LIVE, SessionState.PAUSED):
        return
    # A resume bills the pause's guest-side time, never past what the holds cover.
    cap_ms = coverage_minutes(session, await windows_of(db, session.id)) * MS_PER_MINUTE
    record_presence(session, now, cap_ms)
    if both:
        session.state = SessionState.LIVE
        session.paused_at = None
    elif session.state == SessionState.LIVE:
        session.state = SessionState.PAUSED
        session.paused_at = now
    session.next_action_at = now


async def relay_deadline(db: AsyncSession, session: CallSession, now: datetime) -> datetime:
    """How long relay (TURN) credentials issued now may live: the call's paid time plus its
    grace. Re-issued after each renewal; none once the call is over."""
    paid = paid_until(session, await windows_of(db, session.id), now)
    if paid is None:
        raise InvalidSessionState("The call is over: no relay for it any more.")
    return paid + CallTerms.of(session).reconnect_grace


async def list_for_host(
    db: AsyncSession,
    cursors: CursorSigner,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    state: str | None,
    link_id: str | None,
) -> tuple[list[CallSession], str | None, bool]:
    return await keyset_page(
        db,
        repository.host_sessions_query(principal.user.id, state=state, link_id=link_id),
        CallSession.id,
        cursors,
        owner=principal.user.id,
        limit=limit,
        cursor=cursor,
    )


async def recheck_payment(db: AsyncSession, clock: Clock, hold_id: str) -> None:
    """A provider event about one of the call's holds: let the engine look again now."""
    session = await find_by_hold(db, hold_id)
    if session is not None and session.state not in FINAL_STATES:
        session.next_action_at = clock.now()


async def flag_dispute(db: AsyncSession, clock: Clock, hold_id: str, reason: str) -> None:
    session = await find_by_hold(db, hold_id)
    if session is None or session.disputed_at is not None:
        return
    session.disputed_at = clock.now()
    host = await db.get_one(User, session.host_id)
    queue_email(
        db,
        clock,
        recipient=host.email,
        subject="A guest disputed a Vidivo call charge",
        body=(
            f"Hello {host.display_name},\n\n"
            f"The bank of {session.guest_name} opened a dispute ({reason}) on a charge for "
            f"call {session.id}. Stripe will ask you for evidence; reply within its deadline.\n"
        ),
    )
