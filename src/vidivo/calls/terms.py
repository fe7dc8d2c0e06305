"""A call's terms, frozen when it starts, and the money rule: the only module that prices time.

A call is billed per *started* minute of metered time (`calls.meter`): a call that went live
is at least one minute. Window k (from 1) covers metered minutes [(k-1)·W, k·W); its hold is
rate × W, clamped so the holds never pass the guest's spending cap. When a window is used,
its hold is captured for the minutes used in it (the rest released), and the platform's fee
on that capture is taken in basis points, rounded half up to the cent.

Nothing else multiplies a rate by minutes or computes a fee: every module asks `CallTerms`.
A setting changed later affects only calls started later; the stored terms are read back
with `CallTerms.of(session)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

MS_PER_MINUTE = 60_000
BASIS_POINTS = 10_000
MIN_RENEWAL_LEAD_MS = 60_000
# After a declined renewal, one retry holds fewer minutes: a few more may still fit.
FALLBACK_HOLD_MINUTES = 3


class StoredTerms(Protocol):
    """The columns a call keeps its terms in (`CallSession`)."""

    rate_cents: int
    window_minutes: int
    fee_basis_points: int
    max_minutes: int | None
    reconnect_grace_seconds: int
    currency: str


class SpendingCapTooLow(ValueError):
    """A spending cap that does not cover one minute of the call."""


def fee_basis_points(fee_percent: Decimal) -> int:
    """The configured fee (a percentage with up to two decimals) in basis points."""
    return int((fee_percent * 100).to_integral_value(ROUND_HALF_UP))


def first_hold_cents_for_link(rate_cents: int, window_minutes: int) -> int:
    """What starting a call on a link holds first when the guest sets no spending cap (the
    guest page says so before any card is asked for). Fee and grace do not change a hold."""
    return CallTerms(rate_cents, window_minutes, 0, None, 0).first_hold_cents()


@dataclass(frozen=True)
class CallTerms:
    rate_cents: int
    window_minutes: int
    fee_basis_points: int
    # The guest's spending cap, as the whole minutes it pays for (None: no cap).
    max_minutes: int | None
    reconnect_grace_seconds: int
    currency: str = "usd"

    @classmethod
    def at_start(
        cls,
        *,
        rate_cents: int,
        window_minutes: int,
        max_spend_cents: int | None,
        fee_percent: Decimal,
        reconnect_grace_seconds: int,
    ) -> CallTerms:
        max_minutes = None
        if max_spend_cents is not None:
            max_minutes = max_spend_cents // rate_cents
            if max_minutes < 1:
                raise SpendingCapTooLow("must cover at least one minute of the call")
        return cls(
            rate_cents=rate_cents,
            window_minutes=window_minutes,
            fee_basis_points=fee_basis_points(fee_percent),
            max_minutes=max_minutes,
            reconnect_grace_seconds=reconnect_grace_seconds,
        )

    @classmethod
    def of(cls, stored: StoredTerms) -> CallTerms:
        return cls(
            rate_cents=stored.rate_cents,
            window_minutes=stored.window_minutes,
            fee_basis_points=stored.fee_basis_points,
            max_minutes=stored.max_minutes,
            reconnect_grace_seconds=stored.reconnect_grace_seconds,
            currency=stored.currency,
        )

    def store_on(self, stored: StoredTerms) -> None:
        stored.rate_cents = self.rate_cents
        stored.window_minutes = self.window_minutes
        stored.fee_basis_points = self.fee_basis_points
        stored.max_minutes = self.max_minutes
        stored.reconnect_grace_seconds = self.reconnect_grace_seconds
        stored.currency = self.currency

    @property
    def reconnect_grace(self) -> timedelta:
        return timedelta(seconds=self.reconnect_grace_seconds)

    @property
    def max_spend_cents(self) -> int | None:
        return None if self.max_minutes is None else self.max_minutes * self.rate_cents

    # The bill.

    def billed_minutes(self, metered_ms: int, *, went_live: bool) -> int:
        """Started minutes of metered time: 60.001 s is a second minute."""
        if metered_ms < 0:
            raise ValueError("metered time cannot be negative")
        minutes = -(-metered_ms // MS_PER_MINUTE)  # ceiling division, in integers
        return max(minutes, 1) if went_live else minutes

    def bill_cents(self, metered_ms: int, *, went_live: bool) -> int:
        return self.cents_for(self.billed_minutes(metered_ms, went_live=went_live))

    def cents_for(self, minutes: int) -> int:
        """What `minutes` of this call cost: the one place a rate is multiplied."""
        return minutes * self.rate_cents

    def minutes_in(self, cents: int) -> int:
        """The minutes an amount captured at this rate paid for (captures are whole minutes)."""
        return cents // self.rate_cents if self.rate_cents else 0

    # Holds.

    def covered_minutes(self, held_minutes: int) -> int:
        """Minutes the call may run on what is held: never past the spending cap."""
        return held_minutes if self.max_minutes is None else min(held_minutes, self.max_minutes)

    def first_window_minutes(self) -> int:
        return self.next_window_minutes(covered_minutes=0)

    def first_hold_cents(self) -> int:
        return self.cents_for(self.first_window_minutes())

    def next_window_minutes(self, *, covered_minutes: int) -> int:
        """The next window's length after `covered_minutes`: 0 once the cap is reached."""
        if self.max_minutes is None:
            return self.window_minutes
        return max(0, min(self.window_minutes, self.max_minutes - covered_minutes))

    def fallback_minutes(self, planned_minutes: int) -> int:
        """The smaller hold tried once after a declined renewal (0: no smaller one to try)."""
        smaller = min(FALLBACK_HOLD_MINUTES, self.window_minutes)
        return smaller if smaller < planned_minutes else 0

    def renewal_lead_ms(self) -> int:
        """How long before the held time runs out the next hold is placed: max(60 s, 25 % of
        a window), never more than the window itself."""
        window_ms = self.window_minutes * MS_PER_MINUTE
        return min(window_ms, max(MIN_RENEWAL_LEAD_MS, window_ms // 4))

    # Settling a window.

    def capture_cents(
        self, *, start_minute: int, minutes: int, metered_ms: int, went_live: bool
    ) -> int:
        """What a window [start, start + minutes) captures of a call metered `metered_ms`."""
        billed = self.billed_minutes(metered_ms, went_live=went_live)
        return self.cents_for(max(0, min(minutes, billed - start_minute)))

    def fee_cents(self, captured_cents: int) -> int:
        """The platform's share of a capture, rounded half up to the cent."""
        fee = (Decimal(captured_cents) * self.fee_basis_points / BASIS_POINTS).quantize(
            Decimal(1), ROUND_HALF_UP
        )
        return min(int(fee), captured_cents)
