"""The Stripe provider retries transient failures with the caller's idempotency key, so a
retried hold or capture moves the money once, and a failure it cannot get past is a typed
error. Faults are injected by the stand-in (`fail_next`, `drop_next`) in front of localstripe.

The SDK's own retries are off (`max_network_retries=0`); every retry seen here is the
provider's (tenacity, `stripe_max_retries` of them, backing off 0.25 s * 2**n plus up to 1 s
of jitter, never sooner than a 429's Retry-After).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.payments.fake_stripe.standin import RecordedRequest, StripeStandin
from tests.payments.test_provider_contract import (
    Harness,
    customer_with_card,
    hold_request,
    key,
    ready_destination,
)
from vidivo.core.config import Settings
from vidivo.payments.provider import (
    HoldStatus,
    ProviderRateLimited,
    TransientPaymentError,
)
from vidivo.payments.stripe import StripeProvider

RETRIES = 2
CREATE = "/v1/payment_intents"


def make_harness(settings: Settings, standin: StripeStandin, retries: int) -> Harness:
    stripe_settings = standin.provider_settings(settings, "sk_test_retries", max_retries=retries)
    return Harness(StripeProvider(stripe_settings), standin.sdk_client("sk_test_retries"), standin)


@pytest.fixture
def harness(settings: Settings, stripe_standin: StripeStandin) -> Harness:
    return make_harness(settings, stripe_standin, RETRIES)


@pytest.fixture
def no_retries(settings: Settings, stripe_standin: StripeStandin) -> Harness:
    return make_harness(settings, stripe_standin, 0)


def creates(standin: StripeStandin) -> list[RecordedRequest]:
    """The PaymentIntent creations the stand-in received (not captures, cancels, ...)."""
    return [r for r in standin.requests_to(CREATE, "POST") if r.path == CREATE]


def captures(standin: StripeStandin, hold_id: str) -> list[RecordedRequest]:
    return standin.requests_to(f"/v1/payment_intents/{hold_id}/capture", "POST")


async def intents_of(harness: Harness, customer: str) -> list[str]:
    """Ids of every PaymentIntent that exists for `customer` at the fake Stripe."""
    assert harness.stripe_client is not None
    page = await harness.stripe_client.v1.payment_intents.list_async({"limit": 100})
    return [intent.id async for intent in page.auto_paging_iter() if intent.customer == customer]


async def test_a_hold_refused_twice_with_500_is_retried_with_one_key_and_made_once(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    stripe_standin.fail_next(2, status=500, path_prefix=CREATE)
    same = key("hold")

    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=same
    )

    assert (hold.status, hold.amount_cents) == (HoldStatus.REQUIRES_CAPTURE, 1250)
    seen = creates(stripe_standin)
    assert [r.idempotency_key for r in seen] == [same] * 3
    assert [(r.fault, r.status, r.forwarded) for r in seen] == [
        ("refused", 500, False),
        ("refused", 500, False),
        (None, 200, True),
    ]
    assert await intents_of(harness, customer) == [hold.id]
    assert stripe_standin.pending_faults == 0


async def test_a_rate_limited_hold_waits_for_retry_after_then_succeeds(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    # 2 s, not 1: the first back-off alone is 0.25 s plus up to 1 s of jitter, so only a wait
    # longer than 1.25 s shows that Retry-After, not the back-off, set it.
    stripe_standin.fail_next(1, status=429, path_prefix=CREATE, retry_after=2)
    same = key("hold")

    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=same
    )

    assert hold.status == HoldStatus.REQUIRES_CAPTURE
    limited, retried = creates(stripe_standin)
    assert (limited.fault, limited.status) == ("refused", 429)
    assert (retried.fault, retried.status) == (None, 200)
    assert limited.idempotency_key == retried.idempotency_key == same
    assert retried.timestamp - limited.timestamp >= 1.95
    assert await intents_of(harness, customer) == [hold.id]


async def test_a_capture_refused_once_is_retried_with_one_key_and_captures_once(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    stripe_standin.fail_next(1, status=500, path_prefix=f"/v1/payment_intents/{hold.id}/capture")
    same = key("capture")

    captured = await harness.provider.capture_hold(
        hold.id, amount_cents=750, application_fee_cents=75, idempotency_key=same
    )

    assert captured.status == HoldStatus.SUCCEEDED
    assert (captured.amount_captured_cents, captured.application_fee_cents) == (750, 75)
    seen = captures(stripe_standin, hold.id)
    assert [r.idempotency_key for r in seen] == [same, same]
    assert [(r.fault, r.forwarded) for r in seen] == [("refused", False), (None, True)]
    assert (await harness.provider.retrieve_hold(hold.id)).amount_captured_cents == 750
    assert harness.stripe_client is not None
    intent = await harness.stripe_client.v1.payment_intents.retrieve_async(hold.id)
    charge = await harness.stripe_client.v1.charges.retrieve_async(str(intent.latest_charge))
    assert (charge.captured, charge.amount_captured) == (True, 750)


async def test_server_errors_beyond_the_retries_raise_a_transient_error_and_create_nothing(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    stripe_standin.fail_next(RETRIES + 2, status=503, path_prefix=CREATE)
    same = key("hold")

    with pytest.raises(TransientPaymentError) as failed:
        await harness.provider.place_hold(
            hold_request(customer, card, destination), idempotency_key=same
        )

    assert failed.value.message
    assert [(r.idempotency_key, r.fault) for r in creates(stripe_standin)] == [
        (same, "refused")
    ] * (RETRIES + 1)
    assert stripe_standin.pending_faults == 1  # it gave up after RETRIES + 1 attempts
    assert await intents_of(harness, customer) == []


async def test_a_rate_limit_it_may_not_retry_is_a_typed_error_with_the_wait(
    no_retries: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(no_retries)
    customer, card = await customer_with_card(no_retries)
    stripe_standin.fail_next(1, status=429, path_prefix=CREATE, retry_after=7)

    with pytest.raises(ProviderRateLimited) as limited:
        await no_retries.provider.place_hold(
            hold_request(customer, card, destination), idempotency_key=key("hold")
        )

    assert limited.value.retry_after_seconds == 7
    assert len(creates(stripe_standin)) == 1
    assert await intents_of(no_retries, customer) == []


async def test_a_hold_whose_answer_is_lost_is_retried_and_replayed_not_made_twice(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    stripe_standin.drop_next(1, path_prefix=CREATE)
    same = key("hold")

    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=same
    )

    assert hold.status == HoldStatus.REQUIRES_CAPTURE
    assert await intents_of(harness, customer) == [hold.id]
    lost, retried = creates(stripe_standin)
    assert lost.idempotency_key == retried.idempotency_key == same
    assert (lost.fault, lost.forwarded) == ("dropped", True)  # it was made the first time
    assert (retried.replayed, retried.forwarded) == (True, False)  # and only replayed after


async def test_a_hold_sent_twice_at_once_is_made_once_and_both_callers_get_it(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    # A double click's second request arrives while the first is still at Stripe, which
    # answers it 409 `idempotency_key_in_use`: retried, it gets the first one's hold.
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    stripe_standin.slow_next(1, seconds=0.5, path_prefix=CREATE)
    same = key("hold")
    request = hold_request(customer, card, destination)

    async def second_click():
        await asyncio.sleep(0.1)
        return await harness.provider.place_hold(request, idempotency_key=same)

    first, second = await asyncio.gather(
        harness.provider.place_hold(request, idempotency_key=same), second_click()
    )

    assert first.id == second.id
    assert first.status == second.status == HoldStatus.REQUIRES_CAPTURE
    assert await intents_of(harness, customer) == [first.id]
    made, *repeats = creates(stripe_standin)
    assert (made.fault, made.forwarded) == ("slowed", True)
    assert repeats[0].status == 409  # still going through: refused, never forwarded
    assert (repeats[-1].replayed, repeats[-1].forwarded) == (True, False)


async def test_a_capture_whose_answer_is_lost_is_retried_and_captures_once(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    hold = await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    stripe_standin.drop_next(1, path_prefix=f"/v1/payment_intents/{hold.id}/capture")
    same = key("capture")

    captured = await harness.provider.capture_hold(
        hold.id, amount_cents=900, application_fee_cents=90, idempotency_key=same
    )

    assert (captured.status, captured.amount_captured_cents) == (HoldStatus.SUCCEEDED, 900)
    lost, retried = captures(stripe_standin, hold.id)
    assert lost.idempotency_key == retried.idempotency_key == same
    assert (lost.fault, lost.forwarded, retried.replayed) == ("dropped", True, True)
    assert (await harness.provider.retrieve_hold(hold.id)).amount_captured_cents == 900


async def test_reset_forgets_faults_that_have_not_fired(
    harness: Harness, stripe_standin: StripeStandin
) -> None:
    stripe_standin.fail_next(3, status=500, path_prefix=CREATE)
    stripe_standin.drop_next(1, path_prefix=CREATE)
    assert stripe_standin.pending_faults == 4
    stripe_standin.reset()
    assert stripe_standin.pending_faults == 0
    destination = await ready_destination(harness)
    customer, card = await customer_with_card(harness)
    await harness.provider.place_hold(
        hold_request(customer, card, destination), idempotency_key=key("hold")
    )
    assert [r.fault for r in creates(stripe_standin)] == [None]


def test_fail_next_takes_only_transient_statuses(stripe_standin: StripeStandin) -> None:
    with pytest.raises(ValueError):
        stripe_standin.fail_next(1, status=400)
    with pytest.raises(ValueError):
        stripe_standin.fail_next(0)
    assert stripe_standin.pending_faults == 0
