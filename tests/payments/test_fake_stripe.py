"""The fake Stripe itself (localstripe + the stand-in), driven through the official SDK."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import stripe

from tests.payments.fake_stripe.servers import (
    DECLINED_GENERIC,
    DECLINED_INSUFFICIENT_FUNDS,
    DECLINED_ON_CHARGE,
    REQUIRES_AUTHENTICATION,
    VISA,
    make_payment_method,
)
from tests.payments.fake_stripe.standin import StripeStandin, parse_form


@pytest.fixture
def sdk(stripe_standin: StripeStandin) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_12345",
        base_addresses={"api": stripe_standin.url},
        http_client=stripe.HTTPXClient(),
        max_network_retries=0,
    )


def key(action: str) -> dict[str, str]:
    return {"idempotency_key": f"test-{action}-{uuid.uuid4()}"}


async def new_account(sdk: stripe.StripeClient, *, onboarded: StripeStandin | None = None) -> str:
    account = await sdk.v1.accounts.create_async(
        {
            "type": "express",
            "email": "host@example.com",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"host_id": "h1"},
        },
        key("account"),
    )
    if onboarded is not None:
        onboarded.complete_onboarding(account.id)
    return str(account.id)


async def customer_with_card(sdk: stripe.StripeClient, number: str = VISA) -> tuple[str, str]:
    customer = await sdk.v1.customers.create_async(
        {"email": "guest@example.com", "name": "Guest"}, key("customer")
    )
    card = await make_payment_method(sdk, number)
    await sdk.v1.payment_methods.attach_async(card, {"customer": customer.id}, key("attach"))
    return str(customer.id), card


def hold_params(customer: str, card: str, destination: str, **changes: Any) -> dict[str, Any]:
    return {
        "amount": 1250,
        "currency": "usd",
        "customer": customer,
        "payment_method": card,
        "allowed_payment_method_types": ["card"],
        "capture_method": "manual",
        "confirm": True,
        "transfer_data": {"destination": destination},
        "setup_future_usage": "off_session",
        "application_fee_amount": 125,
        "description": "Vidivo call, window 1",
        "metadata": {"session_id": "s1"},
        **changes,
    }


def test_bracket_form_bodies_parse_into_nested_params():
    body = (
        "transfer_data%5Bdestination%5D=acct_1&capabilities%5Bcard_payments%5D%5Brequested%5D=true"
        "&metadata%5Bsession_id%5D=s1&payment_method_types%5B0%5D=card&expand%5B%5D=latest_charge"
        "&amount=1250&description="
    )
    assert parse_form(body) == {
        "transfer_data": {"destination": "acct_1"},
        "capabilities": {"card_payments": {"requested": "true"}},
        "metadata": {"session_id": "s1"},
        "payment_method_types": ["card"],
        "expand": ["latest_charge"],
        "amount": "1250",
        "description": "",
    }


async def test_an_express_account_is_unready_until_onboarding_completes(sdk, stripe_standin):
    created = await sdk.v1.accounts.create_async(
        {
            "type": "express",
            "email": "host@example.com",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"host_id": "h1"},
        },
        key("account"),
    )
    assert created.id.startswith("acct_")
    assert created.object == "account"
    assert (created.charges_enabled, created.payouts_enabled, created.details_submitted) == (
        False,
        False,
        False,
    )
    assert created.requirements.currently_due
    assert created.metadata.to_dict() == {"host_id": "h1"}
    assert created.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}

    retrieved = await sdk.v1.accounts.retrieve_async(created.id)
    assert retrieved.to_dict() == created.to_dict()

    link = await sdk.v1.account_links.create_async(
        {
            "account": created.id,
            "refresh_url": "https://vidivo.test/refresh",
            "return_url": "https://vidivo.test/return",
            "type": "account_onboarding",
        },
        key("link"),
    )
    assert link.object == "account_link"
    assert link.url.startswith("http")
    assert link.expires_at > link.created

    stripe_standin.complete_onboarding(created.id)
    ready = await sdk.v1.accounts.retrieve_async(created.id)
    assert (ready.charges_enabled, ready.payouts_enabled, ready.details_submitted) == (
        True,
        True,
        True,
    )
    assert ready.requirements.currently_due == []
    assert ready.capabilities.transfers == "active"


async def test_opening_the_account_link_completes_onboarding_once(sdk, stripe_standin):
    account = await new_account(sdk)
    link = await sdk.v1.account_links.create_async(
        {
            "account": account,
            "refresh_url": "https://vidivo.test/refresh",
            "return_url": "https://vidivo.test/return",
            "type": "account_onboarding",
        },
        key("link"),
    )
    async with httpx.AsyncClient() as http:
        first = await http.get(link.url)
        again = await http.get(link.url)
    assert (first.status_code, first.headers["location"]) == (303, "https://vidivo.test/return")
    assert again.headers["location"] == "https://vidivo.test/refresh"
    assert stripe_standin.account(account)["charges_enabled"] is True


async def test_unknown_accounts_are_stripe_404s(sdk, stripe_standin):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await sdk.v1.accounts.retrieve_async("acct_1nope")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.json_body["error"]["type"] == "invalid_request_error"
    async with httpx.AsyncClient() as http:
        control = await http.post(
            f"{stripe_standin.url}/_standin/accounts/acct_1nope/complete_onboarding"
        )
    assert control.status_code == 404
    assert control.json()["error"]["code"] == "resource_missing"
    with pytest.raises(KeyError):
        stripe_standin.complete_onboarding("acct_1nope")


async def test_a_destination_hold_then_a_partial_capture_with_the_fee(sdk, stripe_standin):
    destination = await new_account(sdk, onboarded=stripe_standin)
    customer, card = await customer_with_card(sdk)
    hold_key = key("hold")
    hold = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), hold_key
    )
    assert hold.status == "requires_capture"
    assert (hold.amount, hold.amount_capturable, hold.amount_received) == (1250, 1250, 0)
    assert hold.transfer_data.destination == destination
    assert hold.application_fee_amount == 125
    assert hold.setup_future_usage == "off_session"
    assert hold.description == "Vidivo call, window 1"
    assert hold.latest_charge.startswith("ch_")
    assert "charges" not in hold.to_dict()

    updated = await sdk.v1.payment_intents.update_async(
        hold.id, {"description": "Vidivo call, window 1 (renamed)"}, key("update")
    )
    assert updated.description == "Vidivo call, window 1 (renamed)"
    assert updated.amount_capturable == 1250

    captured = await sdk.v1.payment_intents.capture_async(
        hold.id, {"amount_to_capture": 500, "application_fee_amount": 50}, key("capture")
    )
    assert captured.status == "succeeded"
    assert (captured.amount_received, captured.amount_capturable) == (500, 0)
    assert captured.application_fee_amount == 50
    assert captured.transfer_data.destination == destination

    again = await sdk.v1.payment_intents.retrieve_async(hold.id)
    assert (again.status, again.amount_received, again.application_fee_amount) == (
        "succeeded",
        500,
        50,
    )

    create = stripe_standin.requests_to("/v1/payment_intents", "POST")[0]
    assert create.path == "/v1/payment_intents"
    assert create.idempotency_key == hold_key["idempotency_key"]
    assert create.params["transfer_data"] == {"destination": destination}
    assert create.params["capture_method"] == "manual"
    assert create.stripped == {
        "transfer_data": {"destination": destination},
        "setup_future_usage": "off_session",
        "application_fee_amount": "125",
        "description": "Vidivo call, window 1",
    }
    assert create.forwarded and create.status == 200
    capture = stripe_standin.last_request(f"/v1/payment_intents/{hold.id}/capture")
    assert capture.stripped == {"application_fee_amount": "50"}
    assert capture.params == {"amount_to_capture": "500", "application_fee_amount": "50"}


async def test_the_pinned_api_version_takes_allowed_payment_method_types_only(sdk, stripe_standin):
    assert stripe.api_version >= "2026-09-30"  # the SDK pins an "endive" version or later
    destination = await new_account(sdk, onboarded=stripe_standin)
    customer, card = await customer_with_card(sdk)
    old_style = hold_params(customer, card, destination, payment_method_types=["card"])
    del old_style["allowed_payment_method_types"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await sdk.v1.payment_intents.create_async(old_style, key("hold"))
    assert refused.value.http_status == 400
    assert refused.value.code == "payment_method_types_no_longer_supported"
    assert not stripe_standin.last_request("/v1/payment_intents").forwarded

    hold = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), key("hold")
    )
    assert (hold.status, hold.payment_method_types) == ("requires_capture", ["card"])


async def test_the_same_idempotency_key_replays_and_other_params_are_refused(sdk, stripe_standin):
    destination = await new_account(sdk, onboarded=stripe_standin)
    customer, card = await customer_with_card(sdk)
    same = key("hold")
    first = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), same
    )
    second = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), same
    )
    assert second.id == first.id
    assert second.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError) as refused:
        await sdk.v1.payment_intents.create_async(
            hold_params(customer, card, destination, amount=999), same
        )
    assert "same parameters" in refused.value.user_message

    attempts = [r for r in stripe_standin.requests if r.idempotency_key == same["idempotency_key"]]
    assert [(r.forwarded, r.replayed, r.status) for r in attempts] == [
        (True, False, 200),
        (False, True, 200),
        (False, False, 400),
    ]

    account_key = key("account")
    params = {"type": "express", "email": "h@example.com"}
    one = await sdk.v1.accounts.create_async(params, account_key)
    two = await sdk.v1.accounts.create_async(params, account_key)
    assert one.id == two.id


async def test_declines_look_like_stripe_card_errors(sdk, stripe_standin):
    customer = await sdk.v1.customers.create_async({"email": "g@example.com"}, key("customer"))
    for number, decline_code in (
        (DECLINED_GENERIC, "generic_decline"),
        (DECLINED_INSUFFICIENT_FUNDS, "insufficient_funds"),
    ):
        card = await make_payment_method(stripe_standin, number)
        with pytest.raises(stripe.CardError) as declined:
            await sdk.v1.payment_methods.attach_async(card, {"customer": customer.id}, key("a"))
        assert declined.value.code == "card_declined"
        assert declined.value.error.decline_code == decline_code
        assert declined.value.error.type == "card_error"

    destination = await new_account(sdk, onboarded=stripe_standin)
    customer_id, card = await customer_with_card(sdk, DECLINED_ON_CHARGE)
    with pytest.raises(stripe.CardError) as on_charge:
        await sdk.v1.payment_intents.create_async(
            hold_params(customer_id, card, destination), key("hold")
        )
    assert on_charge.value.error.decline_code == "generic_decline"
    intent = on_charge.value.error.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.transfer_data.destination == destination


async def test_an_off_session_hold_needing_authentication_fails_like_stripe(sdk, stripe_standin):
    destination = await new_account(sdk, onboarded=stripe_standin)
    customer, card = await customer_with_card(sdk, REQUIRES_AUTHENTICATION)
    params = hold_params(customer, card, destination, off_session=True)
    del params["setup_future_usage"]
    with pytest.raises(stripe.CardError) as failed:
        await sdk.v1.payment_intents.create_async(params, key("hold"))
    assert failed.value.code == "authentication_required"
    intent = await sdk.v1.payment_intents.retrieve_async(failed.value.error.payment_intent.id)
    assert intent.status == "requires_payment_method"


async def test_stripe_checks_that_localstripe_skips(sdk, stripe_standin):
    unready = await new_account(sdk)
    customer, card = await customer_with_card(sdk)
    with pytest.raises(stripe.InvalidRequestError) as not_onboarded:
        await sdk.v1.payment_intents.create_async(hold_params(customer, card, unready), key("h"))
    assert not_onboarded.value.code == "insufficient_capabilities_for_transfer"

    destination = await new_account(sdk, onboarded=stripe_standin)
    hold = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), key("hold")
    )
    canceled = await sdk.v1.payment_intents.cancel_async(hold.id, {}, key("cancel"))
    assert (canceled.status, canceled.amount_capturable) == ("canceled", 0)
    with pytest.raises(stripe.InvalidRequestError) as late:
        await sdk.v1.payment_intents.capture_async(
            hold.id, {"amount_to_capture": 100}, key("capture")
        )
    assert late.value.code == "payment_intent_unexpected_state"

    hold = await sdk.v1.payment_intents.create_async(
        hold_params(customer, card, destination), key("hold")
    )
    await sdk.v1.payment_intents.capture_async(hold.id, {"amount_to_capture": 1000}, key("cap"))
    refund_params = {
        "payment_intent": hold.id,
        "reverse_transfer": True,
        "refund_application_fee": True,
    }
    refund = await sdk.v1.refunds.create_async({**refund_params, "amount": 300}, key("refund"))
    assert (refund.amount, refund.status, refund.payment_intent) == (300, "succeeded", hold.id)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await sdk.v1.refunds.create_async({**refund_params, "amount": 701}, key("refund"))
    assert too_much.value.code == "amount_too_large"
    rest = await sdk.v1.refunds.create_async(refund_params, key("refund"))
    assert rest.amount == 700
    recorded = stripe_standin.requests_to("/v1/refunds")[0]
    assert recorded.stripped == {"reverse_transfer": "true", "refund_application_fee": "true"}


async def test_recorded_requests_are_served_for_debugging(sdk, stripe_standin):
    await new_account(sdk)
    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{stripe_standin.url}/_standin/requests")).json()
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [
        ("POST", "/v1/accounts", 200)
    ]
    assert recorded[0]["params"]["capabilities"]["transfers"] == {"requested": "true"}
    assert recorded[0]["idempotency_key"].startswith("test-account-")
    assert recorded[0]["timestamp"] > 0
