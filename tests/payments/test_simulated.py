"""What only the simulated provider promises: Stripe's test cards, lapsing holds, limits."""

from __future__ import annotations

import pytest

from tests.payments.test_provider_contract import key
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    HoldRequest,
    HoldStatus,
    InvalidPaymentRequest,
)


@pytest.fixture
async def destination(context) -> str:
    account = await context.payments.create_connected_account(
        email="h@example.com", host_id="h", idempotency_key=key("account")
    )
    await context.payments.complete_onboarding(account.account_id)
    return account.account_id


async def hold_with(context, destination, card, amount=1250, off_session=False, customer=None):
    provider = context.payments
    if customer is None:
        customer = await provider.create_customer(
            email="g@example.com", name="G", idempotency_key=key("customer")
        )
        await provider.attach_payment_method(
            customer_id=customer, payment_method_id=card, idempotency_key=key("attach")
        )
    request = HoldRequest(amount, customer, card, destination, off_session, "call")
    return customer, await provider.place_hold(request, idempotency_key=key("hold"))


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
async def test_stripe_decline_test_cards_are_declined_with_their_code(
    context, destination, card, code
):
    with pytest.raises(CardDeclined) as declined:
        await hold_with(context, destination, card)
    assert declined.value.decline_code == code


async def test_the_authentication_cards_cannot_be_held_off_session_before_authentication(
    context, destination
):
    for card in ("pm_card_authenticationRequired", "pm_card_authenticationRequiredOnSetup"):
        with pytest.raises(AuthenticationRequired):
            await hold_with(context, destination, card, off_session=True)


async def test_a_3ds_hold_points_to_the_local_challenge_page(context, destination):
    _, hold = await hold_with(context, destination, "pm_card_authenticationRequiredOnSetup")
    assert hold.status == HoldStatus.REQUIRES_ACTION
    assert hold.next_action_url == f"https://vidivo.test/simulated/3ds/{hold.id}"


async def test_the_setup_card_passes_off_session_once_authenticated_the_other_never(
    context, destination
):
    provider = context.payments
    for card, later in (
        ("pm_card_authenticationRequiredOnSetup", HoldStatus.REQUIRES_CAPTURE),
        ("pm_card_authenticationRequired", None),
    ):
        customer, first = await hold_with(context, destination, card)
        await provider.complete_authentication(first.id, succeeded=True)
        if later is None:
            with pytest.raises(AuthenticationRequired):
                await hold_with(context, destination, card, off_session=True, customer=customer)
        else:
            _, renewal = await hold_with(
                context, destination, card, off_session=True, customer=customer
            )
            assert renewal.status == later


async def test_decline_after_n_authorizes_n_holds_then_declines(context, destination):
    card = "pm_sim_decline_after_2"
    customer, first = await hold_with(context, destination, card)
    _, second = await hold_with(context, destination, card, off_session=True, customer=customer)
    assert first.status == second.status == HoldStatus.REQUIRES_CAPTURE
    with pytest.raises(CardDeclined) as declined:
        await hold_with(context, destination, card, off_session=True, customer=customer)
    assert declined.value.decline_code == "insufficient_funds"


async def test_a_replayed_decline_is_the_same_decline(context, destination):
    provider = context.payments
    customer = await provider.create_customer(
        email="g@example.com", name="G", idempotency_key=key("customer")
    )
    await provider.attach_payment_method(
        customer_id=customer,
        payment_method_id="pm_card_chargeDeclined",
        idempotency_key=key("attach"),
    )
    request = HoldRequest(1250, customer, "pm_card_chargeDeclined", destination, False, "call")
    same = key("hold")
    for _ in range(2):
        with pytest.raises(CardDeclined):
            await provider.place_hold(request, idempotency_key=same)


async def test_an_uncaptured_hold_lapses_after_seven_days(context, destination, clock):
    _, hold = await hold_with(context, destination, "pm_card_visa")
    clock.advance(7 * 86400 - 60)
    assert (await context.payments.retrieve_hold(hold.id)).status == HoldStatus.REQUIRES_CAPTURE
    clock.advance(120)
    assert (await context.payments.retrieve_hold(hold.id)).status == HoldStatus.CANCELED
    with pytest.raises(InvalidPaymentRequest):
        await context.payments.capture_hold(
            hold.id, amount_cents=100, application_fee_cents=10, idempotency_key=key("cap")
        )


async def test_unknown_payment_methods_and_tiny_amounts_are_refused(context, destination):
    with pytest.raises(InvalidPaymentRequest):
        await hold_with(context, destination, "pm_card_made_up")
    with pytest.raises(InvalidPaymentRequest):
        await hold_with(context, destination, "pm_card_visa", amount=49)


async def test_refunds_never_exceed_what_was_captured(context, destination):
    _, hold = await hold_with(context, destination, "pm_card_visa")
    await context.payments.capture_hold(
        hold.id, amount_cents=500, application_fee_cents=50, idempotency_key=key("cap")
    )
    await context.payments.refund(hold.id, amount_cents=300, idempotency_key=key("r1"))
    with pytest.raises(InvalidPaymentRequest):
        await context.payments.refund(hold.id, amount_cents=201, idempotency_key=key("r2"))
    last = await context.payments.refund(hold.id, amount_cents=200, idempotency_key=key("r3"))
    assert last.amount_cents == 200


async def test_a_hold_to_an_account_that_cannot_take_charges_is_refused(context):
    account = await context.payments.create_connected_account(
        email="h@example.com", host_id="h2", idempotency_key=key("account")
    )
    with pytest.raises(InvalidPaymentRequest):
        await hold_with(context, account.account_id, "pm_card_visa")
