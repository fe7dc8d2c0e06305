"""Call sessions: starting one against a link, the host's answer, presence, the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from vidivo.auth import availability
from vidivo.auth.availability import Availability
from vidivo.auth.models import User
from vidivo.auth.service import GuestPrincipal, Principal
from vidivo.calls import letters, repository, windows
from vidivo.calls.engine import BillingEngine
from vidivo.calls.events import CardUpdated, IncomingCall
from vidivo.calls.models import (
    FINAL_STATES,
    IN_FLIGHT,
    BillingWindow,
    CallSession,
    SessionState,
    WindowState,
)
from vidivo.calls.outcomes import AUTH_FAILED, NEEDS_THE_GUEST
from vidivo.calls.repository import find_by_hold, load_session, windows_of
from vidivo.calls.schemas import SessionStart
from vidivo.calls.terms import MS_PER_MINUTE, CallTerms, SpendingCapTooLow
from vidivo.calls.timeline import begin_ending, coverage_minutes, paid_until, record_presence
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.errors import ApiError, Conflict, NotFound, ValidationFailed
from vidivo.core.hub import Hub
from vidivo.core.money import parse_amount_to_cents
from vidivo.core.pagination import CursorSigner, keyset_page
from vidivo.links import service as links
from vidivo.links.public_cache import PublicLinkCache
from vidivo.mail.letters import queue_letter
from vidivo.mail.service import queue_email
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    CardSummary,
    InvalidPaymentRequest,
    PaymentError,
    PaymentProvider,
)
from vidivo.payouts import service as payouts


class PaymentFailed(ApiError):
    code, status, message = "payment_failed", 402, "The card was declined."


class HostUnavailable(ApiError):
    code, status = "host_unavailable", 409
    message = "This host cannot take paid calls right now."


class HostAway(HostUnavailable):
    message = "The host is away and not taking calls right now."


class InvalidSessionState(ApiError):
    code, status = "invalid_state", 409
    message = "The call is not in a state that allows this."


@dataclass(frozen=True)
class PendingAuthentication:
    """A hold the card's bank asks the guest to authenticate (3-D Secure) before it exists:
    Stripe.js finishes it with the client secret, a plain page at the URL (simulated)."""

    window: int
    client_secret: str | None
    next_action_url: str | None


@dataclass(frozen=True)
class StartedSession:
    session: CallSession
    guest_token: str
    authentication: PendingAuthentication | None = None


def ensure_may_view(session: CallSession, caller: Principal | GuestPrincipal) -> None:
    if isinstance(caller, GuestPrincipal):
        if caller.session_id != session.id:
            raise NotFound("No call session with this id.")
    elif caller.user.id != session.host_id and caller.user.role != "admin":
        raise NotFound("No call session with this id.")


def ensure_party(session: CallSession, caller: Principal | GuestPrincipal) -> None:
    """The call's own host or guest: an admin may look at a call, never join or end it."""
    ensure_may_view(session, caller)
    if isinstance(caller, Principal) and caller.user.id != session.host_id:
        raise NotFound("No call session with this id.")


async def get_for_party(
    db: AsyncSession, session_id: str, caller: Principal | GuestPrincipal
) -> CallSession:
    session = await load_session(db, session_id)
    ensure_party(session, caller)
    return session


async def get_for(
    db: AsyncSession, session_id: str, caller: Principal | GuestPrincipal
) -> CallSession:
    session = await load_session(db, session_id)
    ensure_may_view(session, caller)
    return session


class CallService:
    """A call's life: start, the host's answer, the parties' presence, a new card, the end.
    Built once by the composition root with what it uses."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        clock: Clock,
        provider: PaymentProvider,
        engine: BillingEngine,
        hub: Hub,
        public_links: PublicLinkCache,
        settings: Settings,
        guest_token: Callable[[str], str],
    ) -> None:
        self._factory = factory
        self._clock = clock
        self._provider = provider
        self._engine = engine
        self._hub = hub
        self._public_links = public_links
        self._settings = settings
        # Issues the guest's token for a call (auth's, handed in: auth sits below calls).
        self._guest_token = guest_token

    async def start(self, short_code: str, body: SessionStart) -> StartedSession:
        """Hold the first window, and only then take a use of the link."""
        clock, provider = self._clock, self._provider
        async with self._factory() as db:
            link, host = await links.get_usable_for_view(db, clock, short_code)
            links.ensure_in_schedule(link, clock.now())
            if host.away:  # before any card work: nothing is held for a host who said no
                raise HostAway()
            link_code, limited_uses = link.short_code, link.max_uses is not None
            account = await payouts.get_account(db, host.id)
            if account is None or not account.charges_enabled:
                raise HostUnavailable()
            terms = _terms_at_start(self._settings, link.rate_cents, link.window_size_minutes, body)
            now = clock.now()
            session = CallSession(
                link_id=link.id,
                host_id=host.id,
                state=SessionState.PENDING_PAYMENT,
                guest_name=body.guest_name,
                guest_email=str(body.guest_email).lower(),
                payment_method_id=body.payment_method_id,
                destination_account_id=account.account_id,
                created_at=now,
                next_action_at=now + self._engine.timings.abandoned_start,
            )
            terms.store_on(session)
            db.add(session)
            await db.flush()
            db.add(windows.first_window(session.id, terms, now))
            await db.commit()
            session_id, link_id = session.id, link.id

        try:
            customer_id = await provider.create_customer(
                email=str(body.guest_email),
                name=body.guest_name,
                idempotency_key=f"session:{session_id}:customer",
            )
            card = await provider.attach_payment_method(
                customer_id=customer_id,
                payment_method_id=body.payment_method_id,
                idempotency_key=f"session:{session_id}:attach:{body.payment_method_id}",
            )
        except PaymentError as error:
            await self._fail_start(session_id, "card_refused")
            raise _start_error(error) from error
        async with self._factory() as db:
            session = await load_session(db, session_id)
            session.customer_id = customer_id
            _remember_card(session, card)
            await db.commit()

        await self._engine.advance(session_id)
        session, asked = await self._after_first_hold(session_id, link_id, link_code, limited_uses)
        return StartedSession(session, self._guest_token(session_id), asked)

    async def _after_first_hold(
        self, session_id: str, link_id: str, link_code: str, limited_uses: bool
    ) -> tuple[CallSession, PendingAuthentication | None]:
        """The first hold is settled: authorized, it takes a use and rings the host; refused,
        the start fails; still with the guest's bank, the guest is told how to answer."""
        clock = self._clock
        async with self._factory() as db:
            session = await load_session(db, session_id)
            host = await db.get_one(User, session.host_id, populate_existing=True)
            if session.state == SessionState.PENDING_PAYMENT and host.suspended_at is not None:
                begin_ending(session, clock.now(), "host_suspended")
            if session.state != SessionState.PENDING_PAYMENT:
                # The host was suspended while the first hold was placed (or the guest took
                # too long to authenticate): the engine releases what it held, and the link
                # keeps its use.
                await db.commit()
                await self._engine.advance(session_id)
                if session.end_reason == "host_suspended":
                    raise HostUnavailable()
                raise InvalidSessionState("This call did not start in time; nothing was charged.")
            first = (await windows_of(db, session_id))[0]
            if first.state == WindowState.AUTHENTICATING:
                await db.commit()
                return session, await self._pending_authentication(first)
            if first.state == WindowState.DECLINED:
                code = first.decline_code
                await self._fail_start(
                    session_id, code if code in NEEDS_THE_GUEST else "card_declined"
                )
                raise _declined(first.decline_code)
            if first.state != WindowState.HELD:
                begin_ending(session, clock.now(), "provider_unavailable")
                await db.commit()
                await self._engine.advance(session_id)
                raise payouts.PaymentProviderUnavailable()
            now = clock.now()
            if not await links.consume_use(db, link_id, now):
                begin_ending(session, now, "link_exhausted")
                await db.commit()
                await self._public_links.changed(self._hub, code=link_code)
                await self._engine.advance(session_id)  # releases the hold the loser had placed
                raise links.LinkExhausted()
            session.state = SessionState.WAITING_FOR_HOST
            session.use_consumed = True
            session.waiting_deadline = now + self._engine.timings.host_join_timeout
            session.next_action_at = session.waiting_deadline
            await self._email_host_if_offline(db, session, host, now)
            await db.commit()
        if limited_uses:  # this use may have been the last: the public view changes
            await self._public_links.changed(self._hub, code=link_code)
        await self._hub.publish(f"host:{session.host_id}", IncomingCall(session_id).message())
        return session, None

    async def _email_host_if_offline(
        self, db: AsyncSession, session: CallSession, host: User, now: datetime
    ) -> None:
        """No dashboard of the host is open to ring: the guest waits, so the host is emailed
        (in the same transaction as the wait, so it is sent exactly when the call waits)."""
        timeout = availability.presence_timeout(self._settings.signal_idle_timeout_seconds)
        if await availability.availability(db, host, now, timeout) != Availability.OFFLINE:
            return
        assert session.waiting_deadline is not None
        letter = letters.guest_waiting(
            base_url=self._settings.public_base_url,
            guest_name=session.guest_name,
            host_name=host.display_name,
            join_by=session.waiting_deadline,
            join_minutes=-(-self._settings.host_join_timeout_seconds // 60),
        )
        queue_letter(db, self._clock, host.email, letter)

    async def _pending_authentication(self, window: BillingWindow) -> PendingAuthentication:
        """How the guest answers the bank: read from the provider (never stored here)."""
        assert window.provider_hold_id is not None
        try:
            hold = await self._provider.retrieve_hold(window.provider_hold_id)
        except PaymentError as error:
            raise payouts.PaymentProviderUnavailable() from error
        return PendingAuthentication(window.number, hold.client_secret, hold.next_action_url)

    async def confirm_payment(
        self, session_id: str, caller: GuestPrincipal
    ) -> tuple[CallSession, PendingAuthentication | None]:
        """The guest is back from the bank's challenge: settle the waiting hold, then go on
        as the start or the renewal would have. Asking again changes nothing."""
        async with self._factory() as db:
            session = await load_session(db, session_id)
            ensure_may_view(session, caller)
            link_id = session.link_id
            link_code, limited_uses = await links.code_and_limit(db, link_id)
        try:
            await self._engine.check_authentication(session_id)
        except PaymentError as error:
            raise payouts.PaymentProviderUnavailable() from error
        async with self._factory() as db:
            session = await load_session(db, session_id)
            billing_windows = await windows_of(db, session_id)
            if session.state == SessionState.DECLINED and session.end_reason == AUTH_FAILED:
                raise _declined(AUTH_FAILED)
            first, last = billing_windows[0], billing_windows[-1]
        if session.state == SessionState.PENDING_PAYMENT:
            if first.state in IN_FLIGHT:
                raise InvalidSessionState("This call is still starting.")
            return await self._after_first_hold(session_id, link_id, link_code, limited_uses)
        if last.state == WindowState.AUTHENTICATING:
            return session, await self._pending_authentication(last)
        if last.state == WindowState.DECLINED and last.decline_code == AUTH_FAILED:
            raise _declined(AUTH_FAILED)  # the guest may give a card again
        return session, None

    async def _fail_start(self, session_id: str, reason: str) -> None:
        async with self._factory() as db:
            session = await load_session(db, session_id)
            for window in await windows_of(db, session_id):
                windows.abandon_hold_request(window)
            session.state = SessionState.DECLINED
            session.end_reason = reason
            session.ended_at = self._clock.now()
            session.next_action_at = None
            await db.commit()

    async def _with_retry(self, session_id: str, change: object) -> CallSession:
        """Apply `change(db, session, now)` in its own transaction, retried if the worker raced."""
        for _ in range(5):
            async with self._factory() as db:
                session = await load_session(db, session_id)
                await change(db, session, self._clock.now())  # type: ignore[operator]
                try:
                    await db.commit()
                except StaleDataError:
                    continue
                return session
        raise Conflict("The call changed too often to apply this; try again.")

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
            raise _start_error(error) from error

        async def change(db: AsyncSession, session: CallSession, now: datetime) -> None:
            session.payment_method_id = payment_method_id
            _remember_card(session, card)
            billing_windows = await windows_of(db, session_id)
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
            return session, await self._pending_authentication(last)
        return session, None


def _terms_at_start(
    settings: Settings, rate_cents: int, window_minutes: int, body: SessionStart
) -> CallTerms:
    """The call's terms, read once: the link's price, the platform's settings of today."""
    try:
        return CallTerms.at_start(
            rate_cents=rate_cents,
            window_minutes=window_minutes,
            max_spend_cents=parse_amount_to_cents(body.max_spend) if body.max_spend else None,
            fee_percent=settings.platform_fee_percent,
            reconnect_grace_seconds=settings.reconnect_grace_seconds,
        )
    except SpendingCapTooLow as exc:
        raise ValidationFailed.field("max_spend", str(exc)) from None


def _remember_card(session: CallSession, card: CardSummary | None) -> None:
    """The receipt names the card the call was paid with (the newest one after a change)."""
    if card is not None:
        session.card_brand, session.card_last4 = card.brand[:20], card.last4[:4]


def _decline_message(code: str | None) -> str:
    return {
        "insufficient_funds": "The card has insufficient funds.",
        "authentication_required": "The card's bank asks you to confirm this payment.",
        "authentication_failed": "The card's bank did not confirm the payment.",
    }.get(code or "", "The card was declined.")


def _declined(code: str | None) -> PaymentFailed:
    return PaymentFailed(
        _decline_message(code), details=[{"field": "payment_method_id", "message": code or ""}]
    )


def _start_error(error: PaymentError) -> ApiError:
    if isinstance(error, CardDeclined | AuthenticationRequired):
        return _declined(getattr(error, "decline_code", "authentication_required"))
    if isinstance(error, InvalidPaymentRequest):
        return ValidationFailed.field("payment_method_id", error.message)
    return payouts.PaymentProviderUnavailable()


def ensure_host_of(session: CallSession, principal: Principal) -> None:
    if principal.user.id != session.host_id:
        raise NotFound("No call session with this id.")


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
