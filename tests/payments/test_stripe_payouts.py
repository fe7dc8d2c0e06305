"""Listing a connected account's payouts with the official SDK, against localstripe.

localstripe 1.15.10 has payouts (`POST /v1/payouts`, `GET /v1/payouts`), but only in `eur`,
not by connected account (it ignores the `Stripe-Account` header: the stand-in records it),
and it lists oldest first where Stripe lists newest first. So this checks the request we
send (account header, limit, no idempotency key) and the mapping of what comes back; the
order is Stripe's promise, and the simulated provider's tests check ours.
"""

from __future__ import annotations

from datetime import UTC, datetime

import stripe

from tests.payments.fake_stripe.standin import StripeStandin
from vidivo.payments.provider import Payout, PayoutStatus
from vidivo.payments.stripe import StripeProvider, payout_of


async def test_listing_payouts_asks_as_the_connected_account_and_maps_each_payout(
    settings, stripe_standin: StripeStandin
):
    client = stripe_standin.sdk_client("sk_test_payouts")
    made = {
        status: await client.v1.payouts.create_async(
            {"amount": amount, "currency": "eur", "status": status}
        )
        for status, amount in (("paid", 1234), ("pending", 560), ("failed", 99))
    }
    provider = StripeProvider(
        stripe_standin.provider_settings(settings, "sk_test_payouts", max_retries=0)
    )

    listed = await provider.list_payouts("acct_host_1", limit=100)

    by_id = {payout.id: payout for payout in listed}
    for status, amount in (("paid", 1234), ("pending", 560), ("failed", 99)):
        sent = made[status]
        assert by_id[sent.id] == Payout(
            id=sent.id,
            amount_cents=amount,
            currency="eur",
            status=PayoutStatus(status),
            arrival_date=datetime.fromtimestamp(sent.arrival_date, UTC).date(),
            created_at=datetime.fromtimestamp(sent.created, UTC),
        )
    request = stripe_standin.last_request("/v1/payouts", method="GET")
    assert request.stripe_account == "acct_host_1"
    assert request.query == {"limit": "100"}
    assert request.idempotency_key is None


def test_a_payout_in_transit_or_canceled_or_in_an_unknown_state_maps_to_words_we_know():
    def stripe_payout(status: str) -> stripe.Payout:
        return stripe.Payout.construct_from(
            {
                "id": "po_1",
                "object": "payout",
                "amount": 1500,
                "currency": "usd",
                "status": status,
                "arrival_date": 1773964800,  # 2026-03-20 00:00 UTC
                "created": 1773792000,  # 2026-03-18 00:00 UTC
            },
            "sk_test",
        )

    payout = payout_of(stripe_payout("in_transit"))
    assert payout.status == PayoutStatus.IN_TRANSIT
    assert payout.amount_cents == 1500
    assert payout.arrival_date.isoformat() == "2026-03-20"
    assert payout.created_at == datetime(2026, 3, 18, tzinfo=UTC)
    assert payout_of(stripe_payout("canceled")).status == PayoutStatus.CANCELED
    assert payout_of(stripe_payout("something_new")).status == PayoutStatus.PENDING
