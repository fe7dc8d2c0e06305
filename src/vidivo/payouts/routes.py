from __future__ import annotations

from fastapi import APIRouter

from vidivo.auth.deps import CurrentHost
from vidivo.core.deps import AppClock, AppSettings, DbSession
from vidivo.core.schemas import error_responses
from vidivo.payments.deps import Payments
from vidivo.payouts import service
from vidivo.payouts.schemas import OnboardingLink, PayoutStatus

router = APIRouter(tags=["payouts"])


@router.post(
    "/v1/host/payouts/onboarding",
    responses=error_responses(401, 403, 502),
    summary="Start (or resume) payout onboarding: a one-time link to the provider's pages",
)
async def start_onboarding(
    principal: CurrentHost,
    db: DbSession,
    provider: Payments,
    clock: AppClock,
    settings: AppSettings,
) -> OnboardingLink:
    url = await service.start_onboarding(
        db, provider, clock, principal.user, base_url=settings.public_base_url
    )
    return OnboardingLink(url=url)


@router.get(
    "/v1/host/payouts",
    responses=error_responses(401, 403, 502),
    summary="The host's payout account: can it take charges, what is still due",
)
async def payout_status(
    principal: CurrentHost, db: DbSession, provider: Payments, clock: AppClock
) -> PayoutStatus:
    return await service.payout_status(db, provider, clock, principal.user)
