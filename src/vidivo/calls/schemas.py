from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from vidivo.core.money import parse_amount_to_cents
from vidivo.core.schemas import Pagination, RequestModel, Timestamp


def _amount(text: str) -> str:
    parse_amount_to_cents(text)
    return text


class SessionStart(RequestModel):
    guest_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)
    ]
    guest_email: EmailStr = Field(max_length=320)
    payment_method_id: Annotated[str, StringConstraints(min_length=3, max_length=80)]
    max_spend: Annotated[str, AfterValidator(_amount)] | None = Field(
        default=None, description="Most the guest will pay (decimal string); the call ends first."
    )


class PaymentMethodUpdate(RequestModel):
    payment_method_id: Annotated[str, StringConstraints(min_length=3, max_length=80)]


class TermsOut(BaseModel):
    """The terms the call runs under, frozen when it started."""

    currency: str
    rate_per_minute: str
    window_size_minutes: int
    max_spend: str | None
    platform_fee_percent: str
    reconnect_grace_seconds: int
    metering: str = Field(description="How the call's time is metered, in plain words.")


class SessionOut(BaseModel):
    id: str
    link_id: str
    state: str
    end_reason: str | None
    guest_name: str
    rate_per_minute: str
    window_size_minutes: int
    max_spend: str | None
    live_seconds: int
    billed: str
    current_window: int | None
    next_renewal_at: Timestamp | None
    next_hold: str | None = Field(
        default=None,
        description="What the next renewal will hold (decimal string) while the call is live "
        "or paused; null when none is due (the spending cap is covered, or the call is not "
        "running).",
    )
    join_deadline: Timestamp | None = Field(
        default=None,
        description="While the call waits for its host: when it ends unjoined (the guest's "
        "hold is then released, nothing charged); null otherwise.",
    )
    hold_declined: bool
    awaiting_authentication: bool = Field(
        description="The card's bank asks the guest to authenticate a hold (3-D Secure) "
        "before it exists: the first hold (state `pending_payment`) or a renewal on a new card."
    )
    away: str | None = Field(
        description="Whose connection is down while the call is paused: host or guest."
    )
    created_at: Timestamp
    went_live_at: Timestamp | None
    ended_at: Timestamp | None
    terms: TermsOut
    as_of: Timestamp = Field(description="The server's clock when this view was taken.")


class SessionResponse(BaseModel):
    session: SessionOut


class PaymentAuthentication(BaseModel):
    """The card's bank asks the guest to authenticate a hold (3-D Secure, Strong Customer
    Authentication). When done, the guest calls `POST /v1/sessions/{id}/payment/confirm`."""

    window: int = Field(description="The billing window whose hold waits.")
    client_secret: str | None = Field(
        description="With Stripe: the PaymentIntent's client secret, for Stripe.js "
        "`stripe.handleNextAction({clientSecret})`. Only ever given to the guest."
    )
    next_action_url: str | None = Field(
        description="A page to send the guest to (simulated payments: the local challenge "
        "page; add `?return_to=/call/{id}` to come back)."
    )


class SessionStarted(BaseModel):
    session: SessionOut
    guest_token: str
    authentication: PaymentAuthentication | None = Field(
        default=None,
        description="Set when the first hold awaits the guest's authentication: the session "
        "stays `pending_payment`, nothing is held and the host is not rung until it is done.",
    )


class GuestPaymentResponse(BaseModel):
    session: SessionOut
    authentication: PaymentAuthentication | None = Field(
        default=None, description="Set while a hold awaits the guest's authentication."
    )


class HostSessionOut(SessionOut):
    """A call as its host's list shows it: which link, and the money it moved."""

    link_code: str = Field(description="The short code of the link the guest called through.")
    link_label: str | None = Field(description="The link's label (only its host sees it).")
    charged: str = Field(description="Captured from the guest's card.")
    refunded: str = Field(description="Refunded to the guest so far.")


class SessionList(BaseModel):
    sessions: list[HostSessionOut]
    pagination: Pagination


class WindowCharge(BaseModel):
    number: int
    state: str
    held: str
    captured: str
    released: str


class ChargeTotals(BaseModel):
    held: str
    captured: str
    released: str
    platform_fee: str


class Charges(BaseModel):
    windows: list[WindowCharge]
    totals: ChargeTotals
