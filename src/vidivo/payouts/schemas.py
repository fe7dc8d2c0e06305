from __future__ import annotations

from pydantic import BaseModel


class OnboardingLink(BaseModel):
    url: str


class PayoutStatus(BaseModel):
    stripe_connected: bool
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: list[str]
