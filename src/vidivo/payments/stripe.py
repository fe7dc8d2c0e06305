"""The `stripe` provider: the official SDK, Connect destination charges, manual capture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    CustomerCreateParams,
    PaymentIntentCaptureParams,
    PaymentIntentCreateParams,
    PaymentMethodAttachParams,
    PayoutListParams,
    RefundCreateParams,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from vidivo.core.config import Settings
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
    PayoutStatus,
    ProviderRateLimited,
    Refund,
    TransientPaymentError,
)

T = TypeVar("T")
_STATUS = {
    "requires_capture": HoldStatus.REQUIRES_CAPTURE,
    "succeeded": HoldStatus.SUCCEEDED,
    "canceled": HoldStatus.CANCELED,
    "requires_action": HoldStatus.REQUIRES_ACTION,
    "requires_confirmation": HoldStatus.REQUIRES_ACTION,
    "processing": HoldStatus.REQUIRES_ACTION,
    "requires_payment_method": HoldStatus.FAILED,
}


def _translate(error: stripe.StripeError) -> PaymentError:
    message = error.user_message or str(error) or "The payment provider refused the request."
    if isinstance(error, stripe.CardError):
        if error.code == "authentication_required":
            return AuthenticationRequired(message)
        details = error.error.to_dict() if error.error else {}
        decline_code = details.get("decline_code") or error.code or "card_declined"
        return CardDeclined(message, decline_code=str(decline_code))
    if isinstance(error, stripe.RateLimitError):
        retry_after = (error.headers or {}).get("retry-after") or "1"
        return ProviderRateLimited(message, retry_after_seconds=_seconds(retry_after))
    if isinstance(error, stripe.APIConnectionError) or (
        isinstance(error, stripe.APIError) and (error.http_status or 500) >= 500
    ):
        return TransientPaymentError(message)
    if isinstance(error, stripe.APIError) and error.http_status == 409:
        # `idempotency_key_in_use`: a request under the same key (a double click) is still
        # going through; asked again, Stripe answers as it did.
        return TransientPaymentError(message)
    if isinstance(error, stripe.InvalidRequestError | stripe.IdempotencyError):
        return InvalidPaymentRequest(message)
    return PaymentError(message)


MAX_RETRY_AFTER_SECONDS = 30.0


def _seconds(retry_after: str) -> float:
    """`Retry-After` in seconds; an HTTP date or garbage counts as 1 s."""
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return 1.0


class _WaitForRateLimit(wait_base):
    """Back off exponentially, but never sooner than the provider's Retry-After."""

    def __init__(self) -> None:
        self._exponential = wait_exponential_jitter(multiplier=0.25, max=8)

    def __call__(self, retry_state: Any) -> float:
        base: float = self._exponential(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, ProviderRateLimited):
            # Honour Retry-After, within reason: a billing step must not stall for minutes.
            return max(base, min(error.retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
        return base


def _hold(intent: Any) -> Hold:
    data = intent.to_dict()
    status = _STATUS.get(str(data.get("status")), HoldStatus.FAILED)
    asks = status == HoldStatus.REQUIRES_ACTION
    redirect = ((data.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
    return Hold(
        id=str(data["id"]),
        status=status,
        amount_cents=int(data["amount"]),
        amount_captured_cents=int(data.get("amount_received") or 0),
        application_fee_cents=int(data.get("application_fee_amount") or 0),
        # For the guest's browser only: Stripe.js finishes 3-D Secure with it.
        client_secret=str(data["client_secret"]) if asks and data.get("client_secret") else None,
        next_action_url=str(redirect) if asks and redirect else None,
    )


def _account(account: Any) -> AccountStatus:
    data = account.to_dict()
    requirements = (data.get("requirements") or {}).get("currently_due") or []
    return AccountStatus(
        account_id=str(data["id"]),
        charges_enabled=bool(data.get("charges_enabled")),
        payouts_enabled=bool(data.get("payouts_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        requirements=[str(r) for r in requirements],
    )


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        assert settings.stripe_secret_key is not None
        # Retries are ours (tenacity, below): the SDK's own would be invisible to pacing.
        self._client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            http_client=stripe.HTTPXClient(allow_sync_methods=False),
            max_network_retries=0,
        )
        self._attempts = settings.stripe_max_retries + 1

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """One provider call, retried on transient failures with the same idempotency key."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientPaymentError),
            stop=stop_after_attempt(self._attempts),
            wait=_WaitForRateLimit(),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await request()
                except stripe.StripeError as error:
                    raise _translate(error) from error
        raise AssertionError("unreachable: tenacity re-raises the last error")

    @staticmethod
    def _options(idempotency_key: str) -> stripe.RequestOptions:
        return {"idempotency_key": idempotency_key}

    async def create_connected_account(
        self, *, email: str, host_id: str, idempotency_key: str
    ) -> AccountStatus:
        params: AccountCreateParams = {
            "type": "express",
            "email": email,
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"host_id": host_id},
        }
        account = await self._call(
            lambda: self._client.v1.accounts.create_async(params, self._options(idempotency_key))
        )
        return _account(account)

    async def create_onboarding_link(
        self, *, account_id: str, refresh_url: str, return_url: str, idempotency_key: str
    ) -> str:
        params: AccountLinkCreateParams = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        link = await self._call(
            lambda: self._client.v1.account_links.create_async(
                params, self._options(idempotency_key)
            )
        )
        return str(link.url)

    async def retrieve_account(self, account_id: str) -> AccountStatus:
        account = await self._call(lambda: self._client.v1.accounts.retrieve_async(account_id))
        return _account(account)

    async def create_customer(self, *, email: str, name: str, idempotency_key: str) -> str:
        params: CustomerCreateParams = {"email": email, "name": name}
        customer = await self._call(
            lambda: self._client.v1.customers.create_async(params, self._options(idempotency_key))
        )
        return str(customer.id)

    async def attach_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> CardSummary | None:
        params: PaymentMethodAttachParams = {"customer": customer_id}
        method = await self._call(
            lambda: self._client.v1.payment_methods.attach_async(
                payment_method_id, params, self._options(idempotency_key)
            )
        )
        return _card_summary(method)

    async def place_hold(self, request: HoldRequest, *, idempotency_key: str) -> Hold:
        params: PaymentIntentCreateParams = {
            "amount": request.amount_cents,
            "currency": "usd",
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            # Since API version 2026-09-30 (the SDK pins a later one) Stripe refuses
            # `payment_method_types` on create; this is its card-only replacement.
            "allowed_payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            # A destination charge: the host's connected account receives the funds.
            "transfer_data": {"destination": request.destination_account_id},
            "description": request.description,
            "metadata": request.metadata,
        }
        if request.off_session:
            params["off_session"] = True
        else:
            params["setup_future_usage"] = "off_session"  # later windows reuse the card
        intent = await self._call(
            lambda: self._client.v1.payment_intents.create_async(
                params, self._options(idempotency_key)
            )
        )
        hold = _hold(intent)
        if hold.status == HoldStatus.REQUIRES_ACTION and request.off_session:
            raise AuthenticationRequired("This card needs authentication, which a hold cannot do.")
        if hold.status == HoldStatus.REQUIRES_ACTION:
            return hold  # on-session: the guest authenticates with Stripe.js, then we look again
        if hold.status != HoldStatus.REQUIRES_CAPTURE:
            raise CardDeclined("Your card was declined.", decline_code="generic_decline")
        return hold

    async def retrieve_hold(self, hold_id: str) -> Hold:
        intent = await self._call(lambda: self._client.v1.payment_intents.retrieve_async(hold_id))
        return _hold(intent)

    async def capture_hold(
        self,
        hold_id: str,
        *,
        amount_cents: int,
        application_fee_cents: int,
        idempotency_key: str,
    ) -> Hold:
        params: PaymentIntentCaptureParams = {
            "amount_to_capture": amount_cents,
            "application_fee_amount": application_fee_cents,
        }
        intent = await self._call(
            lambda: self._client.v1.payment_intents.capture_async(
                hold_id, params, self._options(idempotency_key)
            )
        )
        return _hold(intent)

    async def cancel_hold(self, hold_id: str, *, idempotency_key: str) -> Hold:
        intent = await self._call(
            lambda: self._client.v1.payment_intents.cancel_async(
                hold_id, {}, self._options(idempotency_key)
            )
        )
        return _hold(intent)

    async def refund(self, hold_id: str, *, amount_cents: int, idempotency_key: str) -> Refund:
        params: RefundCreateParams = {
            "payment_intent": hold_id,
            "amount": amount_cents,
            # Take the money back from the host's account and return our fee share with it.
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
        refund = await self._call(
            lambda: self._client.v1.refunds.create_async(params, self._options(idempotency_key))
        )
        return Refund(str(refund.id), hold_id, int(refund.amount), str(refund.status))

    async def list_payouts(self, account_id: str, *, limit: int) -> list[Payout]:
        params: PayoutListParams = {"limit": limit}
        # The connected account's own payouts (Stripe lists them newest first): the request
        # is made as that account. A read, so no idempotency key.
        options: stripe.RequestOptions = {"stripe_account": account_id}
        page = await self._call(lambda: self._client.v1.payouts.list_async(params, options))
        return [payout_of(item) for item in page.data]


def payout_of(payout: stripe.Payout) -> Payout:
    """A Stripe Payout object in our terms: cents, and its dates (Unix seconds) in UTC."""
    data = payout.to_dict()
    return Payout(
        id=str(data["id"]),
        amount_cents=int(data["amount"]),
        currency=str(data["currency"]),
        # Stripe may add states; one we do not know is not yet money at the bank.
        status=_PAYOUT_STATUS.get(str(data.get("status")), PayoutStatus.PENDING),
        arrival_date=datetime.fromtimestamp(int(data["arrival_date"]), UTC).date(),
        created_at=datetime.fromtimestamp(int(data["created"]), UTC),
    )


_PAYOUT_STATUS = {status.value: status for status in PayoutStatus}


def _card_summary(method: stripe.PaymentMethod) -> CardSummary | None:
    """The attached PaymentMethod's `card.brand` and `card.last4` (None for a non-card)."""
    card = method.to_dict().get("card") or {}
    brand, last4 = card.get("brand"), card.get("last4")
    if not isinstance(brand, str) or not isinstance(last4, str):
        return None
    return CardSummary(brand=brand, last4=last4)
