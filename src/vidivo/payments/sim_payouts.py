"""The simulated provider's payout schedule: what a Stripe connected account on a daily
automatic schedule would have paid out, worked out from the simulated provider's records.

The model: every captured payment adds its amount less the platform fee to the host's
balance when it is captured; a refund takes back its amount less the fee handed back with
it. At each midnight UTC the balance from before it, if positive, is paid out in full and
arrives at the bank two days later (`in_transit` until that day, `paid` from it); a balance
at or below zero carries to the next day, as Stripe's does. The list is worked out afresh
on each read, so it grows as the clock moves (the test clock routes move it) and stays
deterministic: the same records and clock give the same payouts and ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from vidivo.payments.provider import Payout, PayoutStatus

PAYOUT_TRANSIT = timedelta(days=2)
CURRENCY = "usd"


@dataclass(frozen=True)
class BalanceChange:
    """Cents added to (or, negative, taken from) a host's balance at a moment."""

    at: datetime
    cents: int


def _midnight_after(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def daily_payouts(
    account_id: str, changes: Iterable[BalanceChange], now: datetime, *, limit: int
) -> list[Payout]:
    """The payouts made up to `now`, newest first, at most `limit`."""
    ordered = sorted(changes, key=lambda change: change.at)
    if not ordered:
        return []
    made: list[Payout] = []
    balance, taken = 0, 0
    payday = _midnight_after(ordered[0].at)
    while payday <= now:
        while taken < len(ordered) and ordered[taken].at < payday:
            balance += ordered[taken].cents
            taken += 1
        if balance > 0:
            made.append(_payout(account_id, balance, payday, now))
            balance = 0
        if taken == len(ordered) and balance == 0:
            break  # nothing more will ever be paid out from these records
        payday += timedelta(days=1)
    made.reverse()
    return made[:limit]


def _payout(account_id: str, cents: int, payday: datetime, now: datetime) -> Payout:
    arrival = payday + PAYOUT_TRANSIT
    return Payout(
        id=f"po_sim_{account_id.removeprefix('acct_sim_')}_{payday:%Y%m%d}",
        amount_cents=cents,
        currency=CURRENCY,
        status=PayoutStatus.PAID if now >= arrival else PayoutStatus.IN_TRANSIT,
        arrival_date=arrival.date(),
        created_at=payday,
    )
