"""The simulated provider's payouts: the host's net balance paid out daily, arriving two
days later, the list growing as the clock moves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.payments.test_provider_contract import key
from tests.payments.test_simulated import destination, hold_with  # noqa: F401 (fixture)
from vidivo.payments.provider import InvalidPaymentRequest, Payout, PayoutStatus
from vidivo.payments.sim_payouts import BalanceChange, daily_payouts

MARCH_16 = datetime(2026, 3, 16, tzinfo=UTC)


async def captured(context, destination, amount, fee):  # noqa: F811
    _, hold = await hold_with(context, destination, "pm_card_visa")
    await context.payments.capture_hold(
        hold.id, amount_cents=amount, application_fee_cents=fee, idempotency_key=key("capture")
    )
    return hold


async def test_the_net_of_a_day_is_paid_out_at_midnight_and_arrives_two_days_later(
    context,
    clock,
    destination,  # noqa: F811
):
    provider = context.payments
    hold = await captured(context, destination, 1000, 100)  # 15 March, 10:00 UTC: +9.00
    assert await provider.list_payouts(destination, limit=10) == []

    clock.set(datetime(2026, 3, 15, 23, 0, tzinfo=UTC))
    # A $2.00 refund takes $2.00 back and hands back 20 cents of the fee: -1.80.
    await provider.refund(hold.id, amount_cents=200, idempotency_key=key("refund"))
    assert await provider.list_payouts(destination, limit=10) == []

    clock.set(MARCH_16)
    first = Payout(
        id=f"po_sim_{destination.removeprefix('acct_sim_')}_20260316",
        amount_cents=720,
        currency="usd",
        status=PayoutStatus.IN_TRANSIT,
        arrival_date=date(2026, 3, 18),
        created_at=MARCH_16,
    )
    assert await provider.list_payouts(destination, limit=10) == [first]

    clock.set(MARCH_16 + timedelta(hours=12))
    await captured(context, destination, 1250, 125)  # +11.25 on 16 March
    clock.set(datetime(2026, 3, 18, tzinfo=UTC))
    payouts = await provider.list_payouts(destination, limit=10)
    assert [(p.amount_cents, p.status, p.arrival_date) for p in payouts] == [
        (1125, PayoutStatus.IN_TRANSIT, date(2026, 3, 19)),
        (720, PayoutStatus.PAID, date(2026, 3, 18)),
    ]
    assert [p.id for p in await provider.list_payouts(destination, limit=1)] == [payouts[0].id]


async def test_another_accounts_money_is_not_in_the_payouts(context, clock, destination):  # noqa: F811
    other = await context.payments.create_connected_account(
        email="o@example.com", host_id="o", idempotency_key=key("account")
    )
    await context.payments.complete_onboarding(other.account_id)
    await captured(context, destination, 1000, 100)
    clock.set(MARCH_16)
    assert await context.payments.list_payouts(other.account_id, limit=10) == []
    assert len(await context.payments.list_payouts(destination, limit=10)) == 1


async def test_payouts_of_an_unknown_account_are_refused(context):
    with pytest.raises(InvalidPaymentRequest):
        await context.payments.list_payouts("acct_sim_nope", limit=10)


def test_a_day_that_ends_below_zero_carries_its_debt_to_the_next_payout():
    changes = [
        BalanceChange(datetime(2026, 3, 15, 9, tzinfo=UTC), 500),
        BalanceChange(datetime(2026, 3, 16, 9, tzinfo=UTC), -800),  # a refund after a payout
        BalanceChange(datetime(2026, 3, 17, 9, tzinfo=UTC), 1000),
    ]
    payouts = daily_payouts("acct_sim_x", changes, datetime(2026, 3, 20, tzinfo=UTC), limit=10)
    assert [(p.created_at.date(), p.amount_cents, p.status) for p in payouts] == [
        (date(2026, 3, 18), 200, PayoutStatus.PAID),
        (date(2026, 3, 16), 500, PayoutStatus.PAID),
    ]
