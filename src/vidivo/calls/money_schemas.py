from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StrictStr

from vidivo.calls.schemas import TermsOut
from vidivo.core.money import parse_amount_to_cents
from vidivo.core.schemas import RequestModel, Timestamp


def _positive_amount(text: str) -> str:
    if parse_amount_to_cents(text) <= 0:
        raise ValueError("must be more than 0.00")
    return text


class RefundRequest(RequestModel):
    amount: Annotated[StrictStr, AfterValidator(_positive_amount)] | None = Field(
        default=None, description="Decimal string; omitted: everything not yet refunded."
    )
    reason: Annotated[StrictStr, Field(max_length=200)] | None = None


class RefundOut(BaseModel):
    id: str
    session_id: str
    amount: str
    reason: str | None
    state: str
    created_at: Timestamp


class RefundResponse(BaseModel):
    refund: RefundOut


class ReceiptWindow(BaseModel):
    number: int
    minutes_covered: int
    held: str
    captured: str
    released: str


class Receipt(BaseModel):
    session_id: str
    host_display_name: str
    guest_name: str
    currency: str
    rate_per_minute: str
    state: str
    went_live_at: Timestamp | None
    ended_at: Timestamp | None
    live_seconds: int
    billed_minutes: int
    terms: TermsOut
    windows: list[ReceiptWindow]
    total_charged: str
    refunded: str
    card_brand: str | None = Field(
        default=None, description='The card\'s network ("visa"), when the provider said.'
    )
    card_last4: str | None = Field(default=None, description="The card's last four digits.")
    created_at: Timestamp | None = Field(default=None, description="When the call was started.")
    receipt_url: str | None = Field(
        default=None,
        description="The receipt's signed address: it opens this receipt as a page in any "
        "browser, with no account. Shown only to the call's guest and host.",
    )


class ReceiptResponse(BaseModel):
    receipt: Receipt


class Earnings(BaseModel):
    currency: str
    start: Timestamp | None = Field(serialization_alias="from")
    end: Timestamp | None = Field(serialization_alias="to")
    sessions: int
    gross: str
    platform_fees: str
    refunds: str
    net: str


class PeriodEarnings(BaseModel):
    start: Timestamp = Field(description="When the period begins (local midnight, in UTC).")
    end: Timestamp = Field(description="When it ends (exclusive): the next period's start.")
    label: str = Field(
        description="The local date it begins on: `2026-03-15` (day), the Monday "
        "`2026-03-09` (week), `2026-03` (month)."
    )
    sessions: int
    gross: str
    platform_fees: str
    refunds: str
    net: str


class EarningsByPeriod(BaseModel):
    currency: str
    period: str
    time_zone: str
    start: Timestamp = Field(serialization_alias="from")
    end: Timestamp = Field(serialization_alias="to")
    totals: PeriodEarnings
    periods: list[PeriodEarnings]
