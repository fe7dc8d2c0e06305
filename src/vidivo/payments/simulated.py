"""The `simulated` provider: Stripe's behaviour for test cards, with no keys and no network.

Test PaymentMethods: `pm_card_visa` (and `pm_card_mastercard`) succeed;
`pm_card_chargeDeclined` is declined (`generic_decline`);
`pm_card_chargeDeclinedInsufficientFunds` is declined (`insufficient_funds`);
`pm_sim_decline_after_N` authorizes its first N holds, then `insufficient_funds`.

Cards that ask for 3-D Secure (Strong Customer Authentication), as Stripe's test cards do:
`pm_card_authenticationRequiredOnSetup` (4000 0025 0000 3155) asks on a hold made with the
guest present, and once authenticated there, later off-session holds pass;
`pm_card_authenticationRequired` (4000 0027 6000 3184) asks every time, so an off-session
hold is refused with `authentication_required`. An on-session hold on either is left
`requires_action` with a `next_action_url`: the app's local challenge page, where the
"cardholder" completes or fails authentication (`complete_authentication`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    Text,
    bindparam,
    exists,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.core.clock import Clock
from vidivo.core.db import DriverStatement, UTCDateTime, new_id
from vidivo.core.money import format_cents, refunded_fee_cents
from vidivo.payments.provider import (
    AccountStatus,
    AuthenticationRequired,
    CardDeclined,
    CardSummary,
    Hold,
    HoldRequest,
    HoldStatus,
    InvalidPaymentRequest,
    PaymentError,
    Payout,
    Refund,
    TransientPaymentError,
)
from vidivo.payments.sim_models import (
    SimAccount,
    SimAttachedCard,
    SimCustomer,
    SimIdempotencyKey,
    SimPaymentIntent,
    SimRefund,
)
from vidivo.payments.sim_payouts import BalanceChange, daily_payouts

# Card networks let an uncaptured authorization lapse; Stripe cancels it after 7 days.
AUTHORIZATION_LIFETIME = timedelta(days=7)
ONBOARDING_REQUIREMENTS = ["business_profile.url", "external_account", "tos_acceptance.date"]
_APPROVED = {"pm_card_visa", "pm_card_mastercard"}
_DECLINES = {
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}
# Ask for authentication on a hold made with the guest present; off-session, the first asks
# until it was authenticated once (the card is then set up), the second always.
_AUTHENTICATE_ONCE = "pm_card_authenticationRequiredOnSetup"
_AUTHENTICATE_ALWAYS = "pm_card_authenticationRequired"
_AUTHENTICATING = {_AUTHENTICATE_ONCE, _AUTHENTICATE_ALWAYS}
_DECLINE_AFTER = re.compile(r"^pm_sim_decline_after_([0-9]{1,4})$")
T = TypeVar("T")
_AMOUNT_STAND_IN = -314159265  # no real amount, capture or fee is negative

# The hot paths' statements, built once (SQLAlchemy then skips rebuilding and re-keying them).
_RECORD_KEY = insert(SimIdempotencyKey)
_INSERT_INTENT = insert(SimPaymentIntent)
# A never-refused card's hold counted, if attached and its account takes charges.
_COUNT_APPROVED_HOLD = (
    update(SimAttachedCard)
    .where(
        SimAttachedCard.customer_id == bindparam("customer"),
        SimAttachedCard.payment_method_id == bindparam("payment_method"),
        exists().where(SimAccount.id == bindparam("account"), SimAccount.charges_enabled),
    )
    .values(holds_authorized=SimAttachedCard.holds_authorized + 1)
)
# The same, the intent and its idempotency record in one statement (PostgreSQL).
_counted_card = _COUNT_APPROVED_HOLD.returning(SimAttachedCard.customer_id).cte("counted")
_new_intent = (
    insert(SimPaymentIntent)
    .from_select(
        [
            "id",
            "status",
            "amount",
            "amount_captured",
            "amount_refunded",
            "application_fee",
            "customer_id",
            "payment_method_id",
            "destination_account_id",
            "off_session",
            "description",
            "metadata_json",
            "created_at",
        ],
        select(
            bindparam("intent_id", type_=String),
            bindparam("intent_status", type_=String),
            bindparam("intent_amount", type_=Integer),
            literal(0),
            literal(0),
            literal(0),
            bindparam("customer", type_=String),
            bindparam("payment_method", type_=String),
            bindparam("account", type_=String),
            bindparam("intent_off_session", type_=Boolean),
            bindparam("intent_description", type_=String),
            bindparam("intent_metadata", type_=Text),
            bindparam("at", type_=UTCDateTime),
        ).select_from(_counted_card),
    )
    .returning(SimPaymentIntent.id)
    .cte("intent")
)
_HOLD_IN_ONE_STATEMENT = (
    insert(SimIdempotencyKey)
    .from_select(
        ["key", "fingerprint", "result_json", "created_at"],
        select(
            bindparam("key", type_=String),
            bindparam("fingerprint", type_=String),
            bindparam("result", type_=Text),
            bindparam("at", type_=UTCDateTime),
        ).select_from(_new_intent),
    )
    .returning(SimIdempotencyKey.key)
)
_CAPTURE_CAPTURABLE = (
    update(SimPaymentIntent)
    .where(
        SimPaymentIntent.id == bindparam("hold"),
        SimPaymentIntent.status == HoldStatus.REQUIRES_CAPTURE,
        SimPaymentIntent.amount >= bindparam("captured"),
        SimPaymentIntent.created_at > bindparam("lapsed_before"),
    )
    .values(
        status=HoldStatus.SUCCEEDED,
        amount_captured=bindparam("captured"),
        application_fee=bindparam("fee"),
        captured_at=bindparam("now"),
    )
    .returning(SimPaymentIntent.amount)
)
# The same capture and its idempotency record in one statement (PostgreSQL). The record
# holds the answer, whose amount (the hold's) only the UPDATE knows: it is spliced in.
_captured = _CAPTURE_CAPTURABLE.cte("captured")
_capture_recorded = (
    insert(SimIdempotencyKey)
    .from_select(
        ["key", "fingerprint", "result_json", "created_at"],
        select(
            bindparam("key", type_=String),
            bindparam("fingerprint", type_=String),
            bindparam("result_head", type_=Text)
            + sql_cast(_captured.c.amount, Text)
            + bindparam("result_tail", type_=Text),
            bindparam("recorded_at", type_=UTCDateTime),
        ).select_from(_captured),
    )
    .returning(SimIdempotencyKey.key)
    .cte("recorded")
)
_CAPTURE_IN_ONE_STATEMENT = select(_captured.c.amount).select_from(
    _captured.join(_capture_recorded, true())
)
_CANCEL_UNCAPTURED = (
    update(SimPaymentIntent)
    .where(
        SimPaymentIntent.id == bindparam("hold"), SimPaymentIntent.status != HoldStatus.SUCCEEDED
    )
    .values(status=HoldStatus.CANCELED)
    .returning(
        SimPaymentIntent.amount, SimPaymentIntent.amount_captured, SimPaymentIntent.application_fee
    )
)


def _sim_id(prefix: str) -> str:
    return f"{prefix}_sim_{new_id().lower()}"


def challenge_path(hold_id: str) -> str:
    """The local page where the simulated cardholder answers the bank's challenge."""
    return f"/simulated/3ds/{hold_id}"


def _hold(pi: SimPaymentIntent, base_url: str) -> Hold:
    asks = pi.status == HoldStatus.REQUIRES_ACTION
    return Hold(
        id=pi.id,
        status=HoldStatus(pi.status),
        amount_cents=pi.amount,
        amount_captured_cents=pi.amount_captured,
        application_fee_cents=pi.application_fee,
        next_action_url=f"{base_url}{challenge_path(pi.id)}" if asks else None,
    )


def _account(account: SimAccount) -> AccountStatus:
    return AccountStatus(
        account_id=account.id,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        details_submitted=account.details_submitted,
        requirements=[] if account.details_submitted else list(ONBOARDING_REQUIREMENTS),
    )


_RESULT_TYPES: dict[str, type[Any]] = {
    "AccountStatus": AccountStatus,
    "CardSummary": CardSummary,
    "Hold": Hold,
    "Refund": Refund,
}
_ERROR_TYPES: dict[str, type[PaymentError]] = {
    "CardDeclined": CardDeclined,
    "AuthenticationRequired": AuthenticationRequired,
    "InvalidPaymentRequest": InvalidPaymentRequest,
}


def _encode(outcome: object) -> str:
    if isinstance(outcome, PaymentError):
        fields = {"message": outcome.message}
        if isinstance(outcome, CardDeclined):
            fields["decline_code"] = outcome.decline_code
        return json.dumps({"error": type(outcome).__name__, "fields": fields})
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return json.dumps({"result": type(outcome).__name__, "fields": dataclasses.asdict(outcome)})
    return json.dumps({"value": outcome})


def _decode(stored: str) -> object:
    data = json.loads(stored)
    if "error" in data:
        fields = data["fields"]
        error_type = _ERROR_TYPES[data["error"]]
        if error_type is CardDeclined:
            return CardDeclined(fields["message"], decline_code=fields["decline_code"])
        return error_type(fields["message"])
    if "result" in data:
        fields = data["fields"]
        if data["result"] == "Hold":
            fields["status"] = HoldStatus(fields["status"])
        return _RESULT_TYPES[data["result"]](**fields)
    return data["value"]


def _fingerprint(operation: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps([operation, params], sort_keys=True, default=str).encode()
    ).hexdigest()


class SimulatedProvider:
    name = "simulated"

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        clock: Clock,
        public_base_url: str,
        *,
        latency_ms: int = 0,
    ) -> None:
        self._factory = factory
        self._clock = clock
        self._base = public_base_url
        engine = factory.kw["bind"]
        # PostgreSQL: a never-refused card's hold and a valid capture are one statement each,
        # on asyncpg's own connection (they run once per provider action of the engine).
        self._one_statement: dict[str, DriverStatement] = {}
        if engine.dialect.driver == "asyncpg":
            self._one_statement = {
                "place_hold": DriverStatement(engine, _HOLD_IN_ONE_STATEMENT),
                "capture": DriverStatement(engine, _CAPTURE_IN_ONE_STATEMENT),
            }
        # Benchmarks: the round trip a real provider takes, in real time.
        self._latency = latency_ms / 1000

    async def _network(self) -> None:
        if self._latency:
            await asyncio.sleep(self._latency)

    async def _once(
        self,
        key: str,
        operation: str,
        params: dict[str, Any],
        run: Callable[[AsyncSession], Awaitable[T]],
    ) -> T:
        """Stripe's idempotency: the same key and parameters give the first outcome again
        (errors included); the same key with other parameters is refused.

        The operation runs first and its idempotency record is inserted last, with the
        outcome, in the same transaction: one statement fewer than writing the key first and
        its outcome after. A process killed halfway leaves no trace and a retry with the same
        key runs afresh; a request whose key another one committed meanwhile (or is
        committing: the insert waits for it) is rolled back, its work with it, and answered
        with the stored outcome."""
        await self._network()
        fingerprint = _fingerprint(operation, params)
        async with self._factory() as db:
            outcome: T | PaymentError
            try:
                outcome = await run(db)
            except (CardDeclined, AuthenticationRequired, InvalidPaymentRequest) as error:
                # Stripe keeps a refusal under its key, with whatever the attempt recorded.
                outcome = error
            except IntegrityError:
                # A request under the same key (a double click) wrote the same row first:
                # answered as that one was, once it is stored.
                await db.rollback()
                if await db.get(SimIdempotencyKey, key) is None:
                    raise TransientPaymentError("A request like this one is in progress.") from None
                return cast(T, await self._replay(db, key, fingerprint))
            except BaseException:
                await db.rollback()  # like Stripe after a 5xx: the key can be retried
                raise
            record = {
                "key": key,
                "fingerprint": fingerprint,
                "result_json": _encode(outcome),
                "created_at": self._clock.now(),
            }
            try:
                await db.flush()  # what `run` left pending, then the key (no unit of work)
                await (await db.connection()).execute(_RECORD_KEY, record)
                await db.commit()
            except IntegrityError:
                await db.rollback()
                return cast(T, await self._replay(db, key, fingerprint))
        if isinstance(outcome, PaymentError):
            raise outcome
        return outcome

    @staticmethod
    async def _replay(db: AsyncSession, key: str, fingerprint: str) -> object:
        stored = await db.get_one(SimIdempotencyKey, key)
        if stored.fingerprint != fingerprint:
            raise InvalidPaymentRequest(
                "Keys for idempotent requests can only be used with the same parameters."
            )
        if stored.result_json is None:  # written by a version that committed keys first
            raise TransientPaymentError("A request with this idempotency key is still in progress.")
        outcome = _decode(stored.result_json)
        if isinstance(outcome, PaymentError):
            raise outcome
        return outcome

    # Connect accounts --------------------------------------------------------------

    async def create_connected_account(
        self, *, email: str, host_id: str, idempotency_key: str
    ) -> AccountStatus:
        async def run(db: AsyncSession) -> AccountStatus:
            account = SimAccount(id=_sim_id("acct"), email=email, created_at=self._clock.now())
            db.add(account)
            await db.flush()
            return _account(account)

        params = {"email": email, "host_id": host_id}
        return await self._once(idempotency_key, "create_account", params, run)

    async def create_onboarding_link(
        self, *, account_id: str, refresh_url: str, return_url: str, idempotency_key: str
    ) -> str:
        await self.retrieve_account(account_id)
        return f"{self._base}/payouts/simulated-onboarding/{account_id}"

    async def retrieve_account(self, account_id: str) -> AccountStatus:
        async with self._factory() as db:
            account = await db.get(SimAccount, account_id)
            if account is None:
                raise InvalidPaymentRequest(f"No such account: {account_id}")
            return _account(account)

    async def complete_onboarding(self, account_id: str) -> AccountStatus:
        """What the host does on Stripe's hosted pages, done by one click on a local page."""
        async with self._factory() as db:
            account = await db.get(SimAccount, account_id)
            if account is None:
                raise InvalidPaymentRequest(f"No such account: {account_id}")
            account.charges_enabled = account.payouts_enabled = True
            account.details_submitted = True
            await db.commit()
            return _account(account)

    # Customers and cards -----------------------------------------------------------

    async def create_customer(self, *, email: str, name: str, idempotency_key: str) -> str:
        async def run(db: AsyncSession) -> str:
            customer = SimCustomer(
                id=_sim_id("cus"), email=email, name=name, created_at=self._clock.now()
            )
            db.add(customer)
            await db.flush()
            return customer.id

        params = {"email": email, "name": name}
        return await self._once(idempotency_key, "create_customer", params, run)

    async def attach_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> CardSummary:
        async def run(db: AsyncSession) -> CardSummary:
            _check_known_card(payment_method_id)
            if await db.get(SimCustomer, customer_id) is None:
                raise InvalidPaymentRequest(f"No such customer: {customer_id}")
            if await db.get(SimAttachedCard, (customer_id, payment_method_id)) is None:
                db.add(
                    SimAttachedCard(customer_id=customer_id, payment_method_id=payment_method_id)
                )
                await db.flush()
            return _card_summary(payment_method_id)

        params = {"customer": customer_id, "payment_method": payment_method_id}
        return await self._once(idempotency_key, "attach", params, run)

    # Holds -------------------------------------------------------------------------

    async def place_hold(self, request: HoldRequest, *, idempotency_key: str) -> Hold:
        async def run(db: AsyncSession) -> Hold:
            return await self._authorize(db, request)

        params = dataclasses.asdict(request)
        if request.payment_method_id in _APPROVED and request.amount_cents >= 50:
            hold = await self._hold_in_one_statement(request, idempotency_key, params)
            if hold is not None:
                return hold
        return await self._once(idempotency_key, "place_hold", params, run)

    async def _hold_in_one_statement(
        self, request: HoldRequest, key: str, params: dict[str, Any]
    ) -> Hold | None:
        """On PostgreSQL, a never-refused card's hold is one statement: the card counted (if
        attached and its account takes charges), the intent and the idempotency record
        written, atomically and with no transaction round trips around it. A key already
        recorded makes the whole statement fail: the first outcome is answered. None when
        nothing was written: `_once` then runs the general path, which refuses as it must."""
        if not self._one_statement:
            return None
        await self._network()
        fingerprint = _fingerprint("place_hold", params)
        now = self._clock.now()
        hold = Hold(_sim_id("pi"), HoldStatus.REQUIRES_CAPTURE, request.amount_cents)
        values = {
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            "account": request.destination_account_id,
            "intent_id": hold.id,
            "intent_status": HoldStatus.REQUIRES_CAPTURE.value,
            "intent_amount": request.amount_cents,
            "intent_off_session": request.off_session,
            "intent_description": request.description,
            "intent_metadata": json.dumps(request.metadata),
            "at": now,
            "key": key,
            "fingerprint": fingerprint,
            "result": _encode(hold),
        }
        written = await self._in_one_statement("place_hold", values, key, fingerprint)
        if isinstance(written, Hold):
            return written  # the key's first outcome
        return hold if written is not None else None

    async def _in_one_statement(
        self, operation: str, values: dict[str, Any], key: str, fingerprint: str
    ) -> Any:
        """The operation's statement, which does it and writes its idempotency record, run
        alone (autocommitted: it is its own transaction). Its first row (None when it wrote
        nothing), or, when the key was recorded already, the first outcome under it."""
        try:
            rows = await self._one_statement[operation].all(values)
        except IntegrityError:
            async with self._factory() as db:
                replayed = await self._replay(db, key, fingerprint)
            assert isinstance(replayed, Hold)
            return replayed
        return rows[0] if rows else None

    async def _authorize(self, db: AsyncSession, request: HoldRequest) -> Hold:
        if request.amount_cents < 50:
            raise InvalidPaymentRequest("Amount must be at least $0.50 usd.")
        if request.payment_method_id in _APPROVED:
            hold = await self._authorize_approved(db, request)
            if hold is not None:
                return hold
        card = await db.get(
            SimAttachedCard, (request.customer_id, request.payment_method_id), with_for_update=True
        )
        if card is None:
            raise InvalidPaymentRequest("The PaymentMethod is not attached to this customer.")
        account = await db.get(SimAccount, request.destination_account_id)
        if account is None or not account.charges_enabled:
            raise InvalidPaymentRequest("The destination account cannot take charges.")
        intent = SimPaymentIntent(
            id=_sim_id("pi"),
            status=HoldStatus.REQUIRES_CAPTURE,
            amount=request.amount_cents,
            customer_id=request.customer_id,
            payment_method_id=request.payment_method_id,
            destination_account_id=request.destination_account_id,
            off_session=request.off_session,
            description=request.description,
            metadata_json=json.dumps(request.metadata),
            created_at=self._clock.now(),
        )
        db.add(intent)
        refusal = _refusal(request.payment_method_id, card.holds_authorized, request.off_session)
        if refusal is not None:
            intent.status = HoldStatus.FAILED  # kept: _once commits it with the refusal
            await db.flush()
            raise refusal
        if request.payment_method_id in _AUTHENTICATING and not request.off_session:
            intent.status = HoldStatus.REQUIRES_ACTION  # authorized once the cardholder is
        else:
            card.holds_authorized += 1
        await db.flush()
        return _hold(intent, self._base)

    async def _authorize_approved(self, db: AsyncSession, request: HoldRequest) -> Hold | None:
        """A card that is never refused, attached, to an account that takes charges: counted
        and held in two statements (the count's UPDATE locks the card as the general path's
        SELECT … FOR UPDATE does). None when either check fails: the general path then finds
        which one and refuses as it always did."""
        connection = await db.connection()
        card = {
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            "account": request.destination_account_id,
        }
        if (await connection.execute(_COUNT_APPROVED_HOLD, card)).rowcount != 1:
            return None
        intent_id = _sim_id("pi")
        intent = {
            "id": intent_id,
            "status": HoldStatus.REQUIRES_CAPTURE,
            "amount": request.amount_cents,
            "amount_captured": 0,
            "amount_refunded": 0,
            "application_fee": 0,
            "customer_id": request.customer_id,
            "payment_method_id": request.payment_method_id,
            "destination_account_id": request.destination_account_id,
            "off_session": request.off_session,
            "description": request.description,
            "metadata_json": json.dumps(request.metadata),
            "created_at": self._clock.now(),
            "captured_at": None,
        }
        await connection.execute(_INSERT_INTENT, intent)
        return Hold(intent_id, HoldStatus.REQUIRES_CAPTURE, request.amount_cents, 0, 0)

    async def complete_authentication(self, hold_id: str, *, succeeded: bool) -> Hold:
        """What the cardholder does on the bank's 3-D Secure page, done on a local page:
        authenticated, the hold is authorized (and the card set up for later off-session
        holds); failed, it is declined, as Stripe leaves it (`requires_payment_method`)."""
        async with self._factory() as db:
            intent = await self._load_intent(db, hold_id)
            if intent.status != HoldStatus.REQUIRES_ACTION:
                raise InvalidPaymentRequest(
                    f"This PaymentIntent does not await authentication: it is {intent.status}."
                )
            if succeeded:
                card = await db.get_one(
                    SimAttachedCard,
                    (intent.customer_id, intent.payment_method_id),
                    with_for_update=True,
                )
                card.holds_authorized += 1
                intent.status = HoldStatus.REQUIRES_CAPTURE
            else:
                intent.status = HoldStatus.FAILED
            await db.commit()
            return _hold(intent, self._base)

    async def _load_intent(self, db: AsyncSession, hold_id: str) -> SimPaymentIntent:
        intent = await db.get(SimPaymentIntent, hold_id, with_for_update=True)
        if intent is None:
            raise InvalidPaymentRequest(f"No such payment_intent: {hold_id}")
        lapsed = self._clock.now() - intent.created_at >= AUTHORIZATION_LIFETIME
        if intent.status == HoldStatus.REQUIRES_CAPTURE and lapsed:
            intent.status = HoldStatus.CANCELED
        return intent

    async def retrieve_hold(self, hold_id: str) -> Hold:
        await self._network()
        async with self._factory() as db:
            intent = await self._load_intent(db, hold_id)
            await db.commit()
            return _hold(intent, self._base)

    async def capture_hold(
        self,
        hold_id: str,
        *,
        amount_cents: int,
        application_fee_cents: int,
        idempotency_key: str,
    ) -> Hold:
        async def run(db: AsyncSession) -> Hold:
            captured = await self._capture_capturable(
                db, hold_id, amount_cents, application_fee_cents
            )
            if captured is not None:
                return captured
            intent = await self._load_intent(db, hold_id)
            if intent.status != HoldStatus.REQUIRES_CAPTURE:
                raise InvalidPaymentRequest(
                    f"This PaymentIntent could not be captured because it has a status "
                    f"of {intent.status}."
                )
            if not 0 < amount_cents <= intent.amount:
                raise InvalidPaymentRequest("amount_to_capture exceeds the authorized amount.")
            if not 0 <= application_fee_cents <= amount_cents:
                raise InvalidPaymentRequest("application_fee_amount exceeds the capture.")
            # Capturing part releases the rest of the authorization at once.
            intent.status = HoldStatus.SUCCEEDED
            intent.amount_captured = amount_cents
            intent.application_fee = application_fee_cents
            intent.captured_at = self._clock.now()
            await db.flush()
            return _hold(intent, self._base)

        params = {"hold": hold_id, "amount": amount_cents, "fee": application_fee_cents}
        hold = await self._capture_in_one_statement(
            hold_id, amount_cents, application_fee_cents, idempotency_key, params
        )
        if hold is not None:
            return hold
        return await self._once(idempotency_key, "capture", params, run)

    async def _capture_in_one_statement(
        self, hold_id: str, amount_cents: int, fee_cents: int, key: str, params: dict[str, Any]
    ) -> Hold | None:
        """On PostgreSQL, a valid capture of a capturable hold and its idempotency record in
        one autocommitted statement. None when nothing was written: `_once` then runs the
        general path, which refuses as it must."""
        if not self._one_statement or amount_cents <= 0:
            return None
        if not 0 <= fee_cents <= amount_cents:
            return None
        await self._network()
        fingerprint = _fingerprint("capture", params)
        now = self._clock.now()
        # The answer with a stand-in amount, cut where the hold's amount goes.
        answer = Hold(hold_id, HoldStatus.SUCCEEDED, _AMOUNT_STAND_IN, amount_cents, fee_cents)
        head, tail = _encode(answer).split(str(_AMOUNT_STAND_IN))
        values = {
            "hold": hold_id,
            "captured": amount_cents,
            "fee": fee_cents,
            "now": now,
            "lapsed_before": now - AUTHORIZATION_LIFETIME,
            "key": key,
            "fingerprint": fingerprint,
            "result_head": head,
            "result_tail": tail,
            "recorded_at": now,
        }
        row = await self._in_one_statement("capture", values, key, fingerprint)
        if row is None or isinstance(row, Hold):
            return row
        return dataclasses.replace(answer, amount_cents=row.amount)

    async def _capture_capturable(
        self, db: AsyncSession, hold_id: str, amount_cents: int, application_fee_cents: int
    ) -> Hold | None:
        """A valid capture of an authorized, unlapsed hold covering the amount, in one UPDATE.
        None when any of that fails: the general path then refuses as it always did."""
        if amount_cents <= 0 or not 0 <= application_fee_cents <= amount_cents:
            return None
        now = self._clock.now()
        capture = {
            "hold": hold_id,
            "captured": amount_cents,
            "fee": application_fee_cents,
            "now": now,
            "lapsed_before": now - AUTHORIZATION_LIFETIME,
        }
        row = (await (await db.connection()).execute(_CAPTURE_CAPTURABLE, capture)).first()
        if row is None:
            return None
        return Hold(hold_id, HoldStatus.SUCCEEDED, row.amount, amount_cents, application_fee_cents)

    async def cancel_hold(self, hold_id: str, *, idempotency_key: str) -> Hold:
        async def run(db: AsyncSession) -> Hold:
            # Whatever it was (lapsed too), a hold not captured ends cancelled, in one UPDATE.
            connection = await db.connection()
            row = (await connection.execute(_CANCEL_UNCAPTURED, {"hold": hold_id})).first()
            if row is not None:
                amount, captured, fee = row
                return Hold(hold_id, HoldStatus.CANCELED, amount, captured, fee)
            intent = await self._load_intent(db, hold_id)
            if intent.status == HoldStatus.SUCCEEDED:
                raise InvalidPaymentRequest(
                    "You cannot cancel this PaymentIntent because it has a status of succeeded."
                )
            intent.status = HoldStatus.CANCELED
            await db.flush()
            return _hold(intent, self._base)

        return await self._once(idempotency_key, "cancel", {"hold": hold_id}, run)

    async def refund(self, hold_id: str, *, amount_cents: int, idempotency_key: str) -> Refund:
        async def run(db: AsyncSession) -> Refund:
            intent = await self._load_intent(db, hold_id)
            if intent.status != HoldStatus.SUCCEEDED:
                raise InvalidPaymentRequest("Only a captured payment can be refunded.")
            refundable = intent.amount_captured - intent.amount_refunded
            if not 0 < amount_cents <= refundable:
                raise InvalidPaymentRequest(
                    f"Refund amount must be between 0.01 and {format_cents(refundable)}."
                )
            intent.amount_refunded += amount_cents
            refund = SimRefund(
                id=_sim_id("re"),
                payment_intent_id=hold_id,
                amount=amount_cents,
                # `refund_application_fee`: the fee's share goes back to the host's balance.
                application_fee_refunded=refunded_fee_cents(
                    intent.application_fee, intent.amount_captured, amount_cents
                ),
                created_at=self._clock.now(),
            )
            db.add(refund)
            await db.flush()
            return Refund(refund.id, hold_id, amount_cents, "succeeded")

        params = {"hold": hold_id, "amount": amount_cents}
        return await self._once(idempotency_key, "refund", params, run)

    # Payouts -----------------------------------------------------------------------

    async def list_payouts(self, account_id: str, *, limit: int) -> list[Payout]:
        await self._network()
        async with self._factory() as db:
            if await db.get(SimAccount, account_id) is None:
                raise InvalidPaymentRequest(f"No such account: {account_id}")
            changes = await _balance_changes(db, account_id)
        return daily_payouts(account_id, changes, self._clock.now(), limit=limit)


async def _balance_changes(db: AsyncSession, account_id: str) -> list[BalanceChange]:
    """What moved the account's balance: captures (less the fee), refunds (less the fee
    handed back), from the simulated provider's own records."""
    captured = (
        await db.execute(
            select(
                SimPaymentIntent.amount_captured - SimPaymentIntent.application_fee,
                SimPaymentIntent.captured_at,
                SimPaymentIntent.created_at,
            ).where(
                SimPaymentIntent.destination_account_id == account_id,
                SimPaymentIntent.status == HoldStatus.SUCCEEDED,
            )
        )
    ).all()
    refunded = (
        await db.execute(
            select(SimRefund.amount - SimRefund.application_fee_refunded, SimRefund.created_at)
            .join(SimPaymentIntent, SimPaymentIntent.id == SimRefund.payment_intent_id)
            .where(SimPaymentIntent.destination_account_id == account_id)
        )
    ).all()
    changes = [BalanceChange(at=at or created, cents=int(net)) for net, at, created in captured]
    changes += [BalanceChange(at=at, cents=-int(back)) for back, at in refunded]
    return changes


# The test cards' numbers end as Stripe's do (pm_card_visa is 4242 4242 4242 4242…).
_CARD_SUMMARIES = {
    "pm_card_visa": CardSummary("visa", "4242"),
    "pm_card_mastercard": CardSummary("mastercard", "4444"),
    "pm_card_chargeDeclined": CardSummary("visa", "0002"),
    "pm_card_chargeDeclinedInsufficientFunds": CardSummary("visa", "9995"),
    _AUTHENTICATE_ONCE: CardSummary("visa", "3155"),
    _AUTHENTICATE_ALWAYS: CardSummary("visa", "3184"),
}


def _card_summary(payment_method_id: str) -> CardSummary:
    # pm_sim_decline_after_N: Stripe's 4000 0000 0000 0341 (attaches, then declines).
    return _CARD_SUMMARIES.get(payment_method_id, CardSummary("visa", "0341"))


def _check_known_card(payment_method_id: str) -> None:
    known = (
        payment_method_id in _APPROVED
        or payment_method_id in _DECLINES
        or payment_method_id in _AUTHENTICATING
        or _DECLINE_AFTER.fullmatch(payment_method_id)
    )
    if not known:
        raise InvalidPaymentRequest(f"No such PaymentMethod: '{payment_method_id}'")


def _refusal(
    payment_method_id: str, holds_authorized: int, off_session: bool
) -> PaymentError | None:
    if payment_method_id in _DECLINES:
        code, message = _DECLINES[payment_method_id]
        return CardDeclined(message, decline_code=code)
    set_up = payment_method_id == _AUTHENTICATE_ONCE and holds_authorized > 0
    if payment_method_id in _AUTHENTICATING and off_session and not set_up:
        # Nobody is there to authenticate: Stripe fails the payment instead of asking.
        return AuthenticationRequired(
            "Your card was declined. This transaction requires authentication."
        )
    match = _DECLINE_AFTER.fullmatch(payment_method_id)
    if match and holds_authorized >= int(match.group(1)):
        return CardDeclined("Your card has insufficient funds.", decline_code="insufficient_funds")
    return None
