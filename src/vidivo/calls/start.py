"""Starting a call against a link: its terms, the first hold, the card it is paid with, and
the guest's answer to the card's bank; a refused card said in the guest's words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.auth import availability
from vidivo.auth.availability import Availability
from vidivo.auth.models import User
from vidivo.auth.service import GuestPrincipal
from vidivo.calls import letters, repository, windows
from vidivo.calls.access import ensure_may_view
from vidivo.calls.engine import BillingEngine
from vidivo.calls.errors import HostAway, HostUnavailable, InvalidSessionState, PaymentFailed
from vidivo.calls.events import IncomingCall
from vidivo.calls.models import IN_FLIGHT, BillingWindow, CallSession, SessionState, WindowState
from vidivo.calls.outcomes import AUTH_FAILED, NEEDS_THE_GUEST
from vidivo.calls.repository import load_session, windows_of
from vidivo.calls.schemas import SessionStart
from vidivo.calls.terms import CallTerms, SpendingCapTooLow
from vidivo.calls.timeline import begin_ending
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.errors import ApiError, Conflict, ValidationFailed
from vidivo.core.hub import Hub
from vidivo.core.money import parse_amount_to_cents
from vidivo.core.races import made_again_on_lost_race
from vidivo.idempotency import service as idempotency
from vidivo.links import service as links
from vidivo.links.public_cache import PublicLinkCache
from vidivo.mail.letters import queue_letter
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    CardSummary,
    InvalidPaymentRequest,
    PaymentError,
    PaymentProvider,
)
from vidivo.payouts import service as payouts

# A start past its first hold: the host was rung (or the call went on from there).
SETTLED_STARTS = {SessionState.WAITING_FOR_HOST, SessionState.LIVE, SessionState.PAUSED}


# A start repeated while the first is under way (three provider calls) waits for its answer
# until the first's claim on the key is this old; then it carries the call on itself.
START_WAIT_SECONDS = 30.0


class StartKeyTaken(Exception):
    """Another start with the same `Idempotency-Key` took it at the same moment."""


@dataclass(frozen=True)
class PendingAuthentication:
    """A hold the card's bank asks the guest to authenticate (3-D Secure) before it exists:
    Stripe.js finishes it with the client secret, a plain page at the URL (simulated)."""

    window: int
    client_secret: str | None
    next_action_url: str | None


@dataclass(frozen=True)
class FirstHoldSettled:
    """A call whose first hold is settled, as its start answers: its windows as read in the
    transaction that settled it (the answer shows them; nobody reads them again)."""

    session: CallSession
    billing_windows: list[BillingWindow]
    authentication: PendingAuthentication | None = None
    host_emailed: bool = False


@dataclass(frozen=True)
class StartedSession:
    session: CallSession
    billing_windows: list[BillingWindow]
    guest_token: str
    authentication: PendingAuthentication | None = None
    # A "guest waiting" letter was queued for the host: the outbox has something to send.
    host_emailed: bool = False


class CallStarter:
    """A call's start: the session and its first hold, then the host rung; and the guest's
    return from the bank's challenge. Built once by the composition root with what it uses."""

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

    def guest_token(self, session_id: str) -> str:
        """The guest's token for a call (again, for a repeated start)."""
        return self._guest_token(session_id)

    async def start_once(
        self, short_code: str, body: SessionStart, claim: idempotency.Claim
    ) -> StartedSession | idempotency.StoredResponse:
        """A start under an `Idempotency-Key`: the first answer again (waited for while its
        request is under way), the call an earlier request began and never answered for
        carried on, or a new start."""
        for _ in range(2):
            earlier = await idempotency.answer_of(
                self._factory, self._clock, claim, wait_seconds=START_WAIT_SECONDS
            )
            if isinstance(earlier, idempotency.StoredResponse):
                return earlier
            if isinstance(earlier, idempotency.UnderWay):
                return await self.resume(earlier.work, body)
            try:
                return await self.start(short_code, body, claim)
            except StartKeyTaken:  # by a start sent at the same moment: its answer is ours
                continue
        raise Conflict("This start's Idempotency-Key changed hands; try again.")

    async def start(
        self, short_code: str, body: SessionStart, claim: idempotency.Claim | None = None
    ) -> StartedSession:
        """Hold the first window, and only then take a use of the link. With an
        `Idempotency-Key`'s `claim`, the key is taken with the call's first writes."""
        clock = self._clock
        async with self._factory() as db:
            link, host = await links.get_usable_for_view(db, clock, short_code)
            links.ensure_in_schedule(link, clock.now())
            if host.away:  # before any card work: nothing is held for a host who said no
                raise HostAway()
            link_code, limited_uses = link.short_code, link.max_uses is not None
            destination = await payouts.account_taking_charges(db, host.id)
            if destination is None:
                raise HostUnavailable()
            terms = terms_at_start(self._settings, link.rate_cents, link.window_size_minutes, body)
            now = clock.now()
            session = CallSession(
                link_id=link.id,
                host_id=host.id,
                state=SessionState.PENDING_PAYMENT,
                guest_name=body.guest_name,
                guest_email=str(body.guest_email).lower(),
                payment_method_id=body.payment_method_id,
                destination_account_id=destination,
                created_at=now,
                next_action_at=now + self._engine.timings.abandoned_start,
            )
            terms.store_on(session)
            db.add(session)
            await db.flush()
            db.add(windows.first_window(session.id, terms, now))
            if claim is not None:
                idempotency.reserve(db, clock, claim, work=session.id)
            try:
                await db.commit()
            except IntegrityError:
                if claim is None:
                    raise
                raise StartKeyTaken() from None  # nothing of this start was written
            session_id, link_id = session.id, link.id
        await self._give_card(session_id, body)
        return await self._first_hold(session_id, link_id, link_code, limited_uses)

    async def resume(self, session_id: str, body: SessionStart) -> StartedSession:
        """A start repeated under its `Idempotency-Key` whose first request never answered
        (it failed, or its process stopped, after the call's first writes): the same start
        carried on from where the call stands. Each step is keyed or version-checked as the
        first request's were, so that request, if it is only slow, changes nothing twice."""
        async with self._factory() as db:
            session = await load_session(db, session_id)
            link_id = session.link_id
            link_code, limited_uses = await links.code_and_limit(db, link_id)
        if session.state == SessionState.PENDING_PAYMENT and session.customer_id is None:
            await self._give_card(session_id, body)
        return await self._first_hold(session_id, link_id, link_code, limited_uses)

    async def _give_card(self, session_id: str, body: SessionStart) -> None:
        """The guest's customer at the provider, with the card attached to it."""
        provider = self._provider
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
            raise start_error(error) from error
        async with self._factory() as db:
            await repository.record_customer(db, session_id, customer_id, card_of(card))
            await db.commit()

    async def _first_hold(
        self, session_id: str, link_id: str, link_code: str, limited_uses: bool
    ) -> StartedSession:
        """The engine places the first hold; the start settles on what came of it."""
        await self._engine.advance(session_id)
        settled = await self._after_first_hold(session_id, link_id, link_code, limited_uses)
        return StartedSession(
            settled.session,
            settled.billing_windows,
            self._guest_token(session_id),
            settled.authentication,
            settled.host_emailed,
        )

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
                raise declined(AUTH_FAILED)
            first, last = billing_windows[0], billing_windows[-1]
        if session.state == SessionState.PENDING_PAYMENT:
            if first.state in IN_FLIGHT:
                raise InvalidSessionState("This call is still starting.")
            settled = await self._after_first_hold(session_id, link_id, link_code, limited_uses)
            return settled.session, settled.authentication
        if last.state == WindowState.AUTHENTICATING:
            return session, await pending_authentication(self._provider, last)
        if last.state == WindowState.DECLINED and last.decline_code == AUTH_FAILED:
            raise declined(AUTH_FAILED)  # the guest may give a card again
        return session, None

    async def _after_first_hold(
        self, session_id: str, link_id: str, link_code: str, limited_uses: bool
    ) -> FirstHoldSettled:
        """The first hold is settled: authorized, it takes a use and rings the host; refused,
        the start fails; still with the guest's bank, the guest is told how to answer.

        Read again when the call changed before this could commit: a second confirmation
        sent with the first (a double click), the worker or the host's suspension."""
        return await made_again_on_lost_race(
            lambda: self._settle_first_hold(session_id, link_id, link_code, limited_uses),
            "The call changed too often to settle its start; try again.",
        )

    async def _settle_first_hold(
        self, session_id: str, link_id: str, link_code: str, limited_uses: bool
    ) -> FirstHoldSettled:
        clock, settings = self._clock, self._settings
        timeout = availability.presence_timeout(settings.signal_idle_timeout_seconds)
        async with self._factory() as db:
            now = clock.now()
            starting = await repository.starting_call(
                db, session_id, availability.fresh_since(now, timeout)
            )
            session, host = starting.session, starting.host
            billing_windows = starting.billing_windows
            first = billing_windows[0]
            if session.state in SETTLED_STARTS:
                return FirstHoldSettled(session, billing_windows)  # another request settled it
            if session.state == SessionState.DECLINED and first.state == WindowState.DECLINED:
                raise declined(first.decline_code)  # as the request that saw it was told
            if session.state == SessionState.PENDING_PAYMENT and host.suspended_at is not None:
                begin_ending(session, now, "host_suspended")
            if session.state != SessionState.PENDING_PAYMENT:
                # The host was suspended while the first hold was placed (or the guest took
                # too long to authenticate): the engine releases what it held, and the link
                # keeps its use.
                await db.commit()
                await self._engine.advance(session_id)
                if session.end_reason == "host_suspended":
                    raise HostUnavailable()
                raise InvalidSessionState("This call did not start in time; nothing was charged.")
            if first.state == WindowState.AUTHENTICATING:
                await db.commit()
                asked = await pending_authentication(self._provider, first)
                return FirstHoldSettled(session, billing_windows, asked)
            if first.state == WindowState.DECLINED:
                code = first.decline_code
                reason = code if code in NEEDS_THE_GUEST else "card_declined"
                _record_failed_start(session, billing_windows, reason, now)
                await db.commit()
                raise declined(first.decline_code)
            if first.state != WindowState.HELD:
                begin_ending(session, now, "provider_unavailable")
                await db.commit()
                await self._engine.advance(session_id)
                raise payouts.PaymentProviderUnavailable()
            if not await links.consume_use(db, link_id, now):
                refusal = await self._why_no_use(db, link_code)
                begin_ending(session, now, _no_use_reason(refusal))
                await db.commit()
                await self._public_links.changed(self._hub, code=link_code)
                await self._engine.advance(session_id)  # releases the hold the loser had placed
                raise refusal
            session.state = SessionState.WAITING_FOR_HOST
            session.use_consumed = True
            session.waiting_deadline = now + self._engine.timings.host_join_timeout
            session.next_action_at = session.waiting_deadline
            offline = (
                availability.availability_of(away=host.away, dashboard_open=starting.dashboard_open)
                == Availability.OFFLINE
            )
            if offline:
                self._email_host(db, session, host)
            await db.commit()
        if limited_uses:  # this use may have been the last: the public view changes
            await self._public_links.changed(self._hub, code=link_code)
        await self._hub.publish(f"host:{session.host_id}", IncomingCall(session_id).message())
        return FirstHoldSettled(session, billing_windows, host_emailed=offline)

    async def _why_no_use(self, db: AsyncSession, link_code: str) -> ApiError:
        """Why the link gave the start no use, as opening it now says: deactivated or
        deleted, expired, or used up by another guest meanwhile. Read in the start's own
        transaction: a second connection per loser could exhaust the pool in a crowd."""
        try:
            await links.get_usable_for_view(db, self._clock, link_code)
        except ApiError as refusal:
            return refusal
        return links.LinkExhausted()  # its last use was taken, then given back since

    def _email_host(self, db: AsyncSession, session: CallSession, host: User) -> None:
        """No dashboard of the host is open to ring: the guest waits, so the host is emailed
        (in the same transaction as the wait, so it is sent exactly when the call waits)."""
        assert session.waiting_deadline is not None
        letter = letters.guest_waiting(
            base_url=self._settings.public_base_url,
            guest_name=session.guest_name,
            host_name=host.display_name,
            join_by=session.waiting_deadline,
            join_minutes=-(-self._settings.host_join_timeout_seconds // 60),
        )
        queue_letter(db, self._clock, host.email, letter)

    async def _fail_start(self, session_id: str, reason: str) -> None:
        async with self._factory() as db:
            session = await load_session(db, session_id)
            billing_windows = await windows_of(db, session_id)
            _record_failed_start(session, billing_windows, reason, self._clock.now())
            await db.commit()


def _no_use_reason(refusal: ApiError) -> str:
    """The call's end reason when its link gave it no use, as the guest was told."""
    if isinstance(refusal, links.LinkExpired):
        return "link_expired"
    if isinstance(refusal, links.LinkExhausted):
        return "link_exhausted"
    return "link_deactivated"  # switched off or deleted by its host meanwhile


def _record_failed_start(
    session: CallSession, billing_windows: list[BillingWindow], reason: str, now: datetime
) -> None:
    """A start that ends before its first hold exists: nothing is held, the call is over."""
    for window in billing_windows:
        windows.abandon_hold_request(window)
    session.state = SessionState.DECLINED
    session.end_reason = reason
    session.ended_at = now
    session.next_action_at = None


async def pending_authentication(
    provider: PaymentProvider, window: BillingWindow
) -> PendingAuthentication:
    """How the guest answers the bank: read from the provider (never stored here)."""
    assert window.provider_hold_id is not None
    try:
        hold = await provider.retrieve_hold(window.provider_hold_id)
    except PaymentError as error:
        raise payouts.PaymentProviderUnavailable() from error
    return PendingAuthentication(window.number, hold.client_secret, hold.next_action_url)


def terms_at_start(
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


def card_of(card: CardSummary | None) -> tuple[str, str] | None:
    """The card's brand and last 4 as a call keeps them, for its receipt."""
    return None if card is None else (card.brand[:20], card.last4[:4])


def remember_card(session: CallSession, card: CardSummary | None) -> None:
    """The receipt names the card the call was paid with (the newest one after a change)."""
    if (named := card_of(card)) is not None:
        session.card_brand, session.card_last4 = named


def decline_message(code: str | None) -> str:
    return {
        "insufficient_funds": "The card has insufficient funds.",
        "authentication_required": "The card's bank asks you to confirm this payment.",
        "authentication_failed": "The card's bank did not confirm the payment.",
    }.get(code or "", "The card was declined.")


def declined(code: str | None) -> PaymentFailed:
    return PaymentFailed(
        decline_message(code), details=[{"field": "payment_method_id", "message": code or ""}]
    )


def start_error(error: PaymentError) -> ApiError:
    """A provider's refusal of the guest's card, as the guest is told it."""
    if isinstance(error, CardDeclined | AuthenticationRequired):
        return declined(getattr(error, "decline_code", "authentication_required"))
    if isinstance(error, InvalidPaymentRequest):
        return ValidationFailed.field("payment_method_id", error.message)
    return payouts.PaymentProviderUnavailable()
