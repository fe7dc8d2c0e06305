from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vidivo.auth.deps import CurrentHost
from vidivo.core.deps import AppClock, AppSettings, DbSession
from vidivo.core.schemas import error_responses
from vidivo.payments.deps import Payments
from vidivo.payments.provider import MAX_PAYOUTS_LISTED
from vidivo.payouts import service
from vidivo.payouts.schemas import OnboardingLink, PayoutHistory, PayoutStatus

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


@router.get(
    "/v1/host/payouts/history",
    responses=error_responses(400, 401, 403, 502),
    summary="The host's latest payouts to their bank, newest first",
)
async def payout_history(
    principal: CurrentHost,
    db: DbSession,
    provider: Payments,
    limit: Annotated[int, Query(ge=1, le=MAX_PAYOUTS_LISTED)] = 10,
) -> PayoutHistory:
    return await service.payout_history(db, provider, principal.user, limit=limit)
