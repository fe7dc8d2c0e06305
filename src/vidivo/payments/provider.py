"""The one interface every money movement goes through, with typed results and errors.

Amounts are integer cents (USD). Every call that creates or moves something takes the
caller's idempotency key: a retry after a crash must find the first attempt's result,
which the SDK's random default key cannot do.

Call a provider with no database write transaction open: a network call must not hold
locks (and on SQLite the simulated provider's own writes would wait on ours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


class HoldStatus(StrEnum):
    REQUIRES_CAPTURE = "requires_capture"  # authorized: funds held on the card
    SUCCEEDED = "succeeded"  # captured (in full or part; the rest released)
    CANCELED = "canceled"  # released without capture, or lapsed after ~7 days
    REQUIRES_ACTION = "requires_action"  # needs the cardholder (3-D Secure)
    FAILED = "failed"  # declined


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HoldRequest:
    amount_cents: int
    customer_id: str
    payment_method_id: str
    destination_account_id: str
    # The first hold is made with the guest present and saves the card for later windows;
    # renewals are merchant-initiated (off-session) on the saved card.
    off_session: bool
    description: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hold:
    id: str
    status: HoldStatus
    amount_cents: int
    amount_captured_cents: int = 0
    application_fee_cents: int = 0
    # While `requires_action`: how the cardholder authenticates. Stripe.js takes the client
    # secret (`stripe.handleNextAction`); a provider whose bank page is a plain URL gives it.
    client_secret: str | None = None
    next_action_url: str | None = None


@dataclass(frozen=True)
class CardSummary:
    """What a receipt may say about the card: its network ("visa") and last four digits."""

    brand: str
    last4: str


@dataclass(frozen=True)
class Refund:
    id: str
    hold_id: str
    amount_cents: int
    status: str


class PayoutStatus(StrEnum):
    """Stripe's payout states: money on its way to the host's bank, or not."""

    PAID = "paid"  # arrived at the bank
    PENDING = "pending"  # created, not yet sent
    IN_TRANSIT = "in_transit"  # sent, not yet arrived
    FAILED = "failed"  # the bank refused it; the money went back to the balance
    CANCELED = "canceled"


@dataclass(frozen=True)
class Payout:
    """One payout from a host's connected account to their bank (integer cents)."""

    id: str
    amount_cents: int
    currency: str
    status: PayoutStatus
    arrival_date: date  # the day the bank should have it (expected, until `paid`)
    created_at: datetime


MAX_PAYOUTS_LISTED = 100  # Stripe's largest page


class PaymentError(Exception):
    """Base of every provider failure; `message` is safe to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CardDeclined(PaymentError):
    def __init__(self, message: str, *, decline_code: str) -> None:
        super().__init__(message)
        self.decline_code = decline_code


class AuthenticationRequired(PaymentError):
    """The bank wants the cardholder to authenticate; an off-session hold cannot.

    (An on-session hold that needs it is no error: it is a `Hold` in `requires_action`.)"""


class InvalidPaymentRequest(PaymentError):
    """The provider refused the request itself (unknown object, bad amount, reused key)."""


class TransientPaymentError(PaymentError):
    """Network trouble or a provider 5xx: safe to retry with the same idempotency key."""


class ProviderRateLimited(TransientPaymentError):
    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PaymentProvider(Protocol):
    name: str

    async def create_connected_account(
        self, *, email: str, host_id: str, idempotency_key: str
    ) -> AccountStatus: ...

    async def create_onboarding_link(
        self, *, account_id: str, refresh_url: str, return_url: str, idempotency_key: str
    ) -> str: ...

    async def retrieve_account(self, account_id: str) -> AccountStatus: ...

    async def create_customer(self, *, email: str, name: str, idempotency_key: str) -> str: ...

    async def attach_payment_method(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> CardSummary | None:
        """Attach the card to the customer; its brand and last 4 when the provider says."""
        ...

    async def place_hold(self, request: HoldRequest, *, idempotency_key: str) -> Hold: ...

    async def retrieve_hold(self, hold_id: str) -> Hold: ...

    async def capture_hold(
        self,
        hold_id: str,
        *,
        amount_cents: int,
        application_fee_cents: int,
        idempotency_key: str,
    ) -> Hold: ...

    async def cancel_hold(self, hold_id: str, *, idempotency_key: str) -> Hold: ...

    async def refund(self, hold_id: str, *, amount_cents: int, idempotency_key: str) -> Refund: ...

    async def list_payouts(self, account_id: str, *, limit: int) -> list[Payout]:
        """The connected account's latest payouts, newest first, at most `limit`
        (1 to MAX_PAYOUTS_LISTED). A read: no idempotency key."""
        ...
