from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from vidivo.core.schemas import Timestamp


class OnboardingLink(BaseModel):
    url: str


class PayoutStatus(BaseModel):
    stripe_connected: bool
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: list[str]


class PayoutOut(BaseModel):
    id: str
    amount: str  # decimal string, as every amount
    currency: str
    status: str  # paid | pending | in_transit | failed | canceled
    arrival_date: date  # expected until `paid`
    created_at: Timestamp


class PayoutHistory(BaseModel):
    payouts: list[PayoutOut]
