"""One contract, every provider: the simulated one and Stripe (the real SDK against
localstripe behind the test stand-in for what localstripe lacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe

from vidivo.core.db import new_id
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    CardSummary,
    Hold,
    HoldRequest,
    HoldStatus,
    InvalidPaymentRequest,
    PaymentProvider,
)
from vidivo.payments.simulated import SimulatedProvider
from vidivo.payments.stripe import StripeProvider

CARD_NUMBERS = {
    "visa": "4242424242424242",
    "declined": "4000000000000002",
    "3ds": "4000002500003155",  # asks for 3-D Secure on a payment with the cardholder there
    "3ds_always": "4000002760003184",
}
SIMULATED_CARDS = {
    "visa": "pm_card_visa",
    "declined": "pm_card_chargeDeclined",
    "3ds": "pm_card_authenticationRequiredOnSetup",
    "3ds_always": "pm_card_authenticationRequired",
}


@dataclass
class Harness:
    provider: PaymentProvider
    stripe_client: stripe.StripeClient | None = None
    standin: Any = None

    async def card(self, kind: str) -> str:
        if self.stripe_client is None:
            return SIMULATED_CARDS[kind]
        method = await self.stripe_client.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {
                    "number": CARD_NUMBERS[kind],
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        )
        return str(method.id)

    async def authenticate(self, hold: Hold, *, succeeded: bool) -> None:
        """The cardholder answers the bank's 3-D Secure challenge: on the simulated
        provider's local page, or as Stripe.js does against localstripe (`_authenticate`
        with the client secret, localstripe's own stand-in for the bank's frame)."""
        if isinstance(self.provider, SimulatedProvider):
            await self.provider.complete_authentication(hold.id, succeeded=succeeded)
            return
        assert hold.client_secret is not None
        async with httpx.AsyncClient() as http:
            answered = await http.post(
                f"{self.standin.localstripe_url}/v1/payment_intents/{hold.id}/_authenticate",
                data={"client_secret": hold.client_secret, "success": str(succeeded).lower()},
                auth=("sk_test_contract", ""),
            )
        assert answered.status_code == 200, answered.text

    async def complete_onboarding(self, account_id: str) -> None:
        if isinstance(self.provider, SimulatedProvider):
            await self.provider.complete_onboarding(account_id)
        else:
            self.standin.complete_onboarding(account_id)


@pytest.fixture(params=["simulated", "stripe"])
async def harness(request, context, settings) -> Harness:
    if request.param == "simulated":
        return Harness(context.payments)
    standin = request.getfixturevalue("stripe_standin")
    stripe_settings = standin.provider_settings(settings, "sk_test_contract", max_retries=0)
    client = standin.sdk_client("sk_test_contract")
    return Harness(StripeProvider(stripe_settings), client, standin)


def key(action: str) -> str:
    return f"test:{new_id()}:{action}"


async def ready_destination(harness: Harness) -> str:
    account = await harness.provider.create_connected_account(
        email="host@example.com", host_id=new_id(), idempotency_key=key("account")
    )
    await harness.complete_onboarding(account.account_id)
    return account.account_id


async def customer_with_card(harness: Harness, kind: str = "visa") -> tuple[str, str]:
    customer = await harness.provider.create_customer(
        email="guest@example.com", name="Guest", idempotency_key=key("customer")
    )
    card = await harness.card(kind)
    await harness.provider.attach_payment_method(
        customer_id=customer, payment_method_id=card, idempotency_key=key("attach")
    )
    return customer, card


def hold_request(customer: str, card: str, destination: str, **changes: Any) -> HoldRequest:
    fields: dict[str, Any] = {
        "amount_cents": 1250,
        "customer_id": customer,
        "payment_method_id": card,
        "destination_account_id": destination,
        "off_session": False,
        "description": "Vidivo call, window 1",
        "metadata": {"session_id": "s1", "window": "1"},
    }
    return HoldRequest(**{**fields, **changes})


@pytest.mark.parametrize(("kind", "last4"), [("visa", "4242"), ("3ds", "3155")])
async def test_attaching_a_card_tells_its_brand_and_last_four_for_the_receipt(harness, kind, last4):
    customer = await harness.provider.create_customer(
        email="guest@example.com", name="Guest", idempotency_key=key("customer")
    )
    card = await harness.provider.attach_payment_method(
        customer_id=customer,
        payment_method_id=await harness.card(kind),
        idempotency_key=key("attach"),
    )
    assert card == CardSummary(brand="visa", last4=last4)


async def test_a_connected_account_starts_unready_and_onboarding_makes_it_chargeable(harness):
    account = await harness.provider.create_connected_account(
        email="host@example.com", host_id=new_id(), idempotency_key=key("account")
    )
    assert account.charges_enabled is False
    assert account.requirements
    link = await harness.provider.create_onboarding_link(
        account_id=account.account_id,
        refresh_url="https://vidivo.test/payouts/onboarding/refresh",
        return_url="https://vidivo.test/payouts/onboarding/return",
        idempotency_key=key("link"),
    )
    assert link.startswith("http")
    await harness.complete_onboarding(account.account_id)
    ready = await harness.provider.retrieve_account(account.account_id)
    assert (ready.charges_enabled, ready.payouts_enabled, ready.details_submitted) == (
        True,
        True,
        True,
    )
    assert ready.requirements == []


async def test_the_same_key_creates_one_account(harness):
    same = key("account")
    first = await harness.provider.create_connected_account(
        email="h@example.com", host_id="h1", idempotency_key=same
    )
    second = await harness.provider.create_connected_account(
        email="h@example.com", host_id="h1", idempotency_key=same
    )
    assert first.account_id == second.account_id


async def test_a_hold_authorizes_the_amount_without_capturing(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    assert hold.status == HoldStatus.REQUIRES_CAPTURE
    assert hold.amount_cents == 1250
    assert hold.amount_captured_cents == 0
    assert await harness.provider.retrieve_hold(hold.id) == hold


async def test_partial_capture_takes_the_used_part_with_the_fee(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    captured = await harness.provider.capture_hold(
        hold.id, amount_cents=500, application_fee_cents=50, idempotency_key=key("capture")
    )
    assert captured.status == HoldStatus.SUCCEEDED
    assert captured.amount_captured_cents == 500
    assert captured.application_fee_cents == 50
    again = await harness.provider.retrieve_hold(hold.id)
    assert again.amount_captured_cents == 500


async def test_a_renewal_hold_reuses_the_saved_card_off_session(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold1")
    )
    renewal = await harness.provider.place_hold(
        hold_request(customer, card, destination, off_session=True),
        idempotency_key=key("hold2"),
    )
    assert renewal.status == HoldStatus.REQUIRES_CAPTURE


async def test_cancel_releases_the_hold_and_it_can_no_longer_be_captured(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    canceled = await harness.provider.cancel_hold(hold.id, idempotency_key=key("cancel"))
    assert canceled.status == HoldStatus.CANCELED
    with pytest.raises(InvalidPaymentRequest):
        await harness.provider.capture_hold(
            hold.id, amount_cents=100, application_fee_cents=10, idempotency_key=key("capture")
        )


async def test_a_retried_hold_with_the_same_key_is_the_same_hold(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    same = key("hold")
    first = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=same
    )
    second = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=same
    )
    assert first.id == second.id
    with pytest.raises(InvalidPaymentRequest):
        await harness.provider.place_hold(
            hold_request(customer, card, destination, amount_cents=999), idempotency_key=same
        )


async def test_a_retried_capture_with_the_same_key_captures_once(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    same = key("capture")
    first = await harness.provider.capture_hold(
        hold.id, amount_cents=750, application_fee_cents=75, idempotency_key=same
    )
    second = await harness.provider.capture_hold(
        hold.id, amount_cents=750, application_fee_cents=75, idempotency_key=same
    )
    assert first == second
    assert second.amount_captured_cents == 750


async def test_a_declined_card_raises_card_declined(harness):
    destination = await ready_destination(harness)
    with pytest.raises(CardDeclined) as declined:
        customer, card = await customer_with_card(harness, "declined")
        await harness.provider.place_hold(
            hold_request(customer, card, destination), idempotency_key=key("hold")
        )
    assert declined.value.decline_code
    assert declined.value.message


async def test_a_partial_refund_returns_part_of_a_capture(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    await harness.provider.capture_hold(
        hold.id, amount_cents=1000, application_fee_cents=100, idempotency_key=key("capture")
    )
    refund = await harness.provider.refund(hold.id, amount_cents=300, idempotency_key=key("refund"))
    assert refund.amount_cents == 300
    assert refund.hold_id == hold.id
    assert refund.status == "succeeded"


async def test_a_hold_with_the_guest_present_waits_for_3ds_then_is_authorized(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness, "3ds")
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    assert hold.status == HoldStatus.REQUIRES_ACTION
    # How the guest's browser answers: Stripe.js takes the client secret, the simulated
    # provider's bank is a page of the app.
    assert hold.client_secret or hold.next_action_url
    await harness.authenticate(hold, succeeded=True)
    authorized = await harness.provider.retrieve_hold(hold.id)
    assert authorized.status == HoldStatus.REQUIRES_CAPTURE
    assert authorized.client_secret is None and authorized.next_action_url is None
    captured = await harness.provider.capture_hold(
        hold.id, amount_cents=500, application_fee_cents=50, idempotency_key=key("capture")
    )
    assert captured.amount_captured_cents == 500


async def test_a_failed_3ds_challenge_leaves_the_hold_declined_and_cancellable(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness, "3ds")
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    await harness.authenticate(hold, succeeded=False)
    assert (await harness.provider.retrieve_hold(hold.id)).status == HoldStatus.FAILED
    canceled = await harness.provider.cancel_hold(hold.id, idempotency_key=key("cancel"))
    assert canceled.status == HoldStatus.CANCELED


async def test_an_off_session_hold_on_an_always_authenticate_card_is_refused(harness):
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness, "3ds_always")
    first = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold1")
    )
    await harness.authenticate(first, succeeded=True)
    with pytest.raises(AuthenticationRequired):
        await harness.provider.place_hold(
            hold_request(customer, card, destination, off_session=True),
            idempotency_key=key("hold2"),
        )
