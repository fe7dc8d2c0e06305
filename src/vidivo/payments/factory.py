"""Pick the provider named by `VIDIVO_PAYMENTS`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.core.clock import Clock
from vidivo.core.config import PaymentsMode, Settings
from vidivo.payments.provider import PaymentProvider
from vidivo.payments.simulated import SimulatedProvider
from vidivo.payments.stripe import StripeProvider


def build_provider(
    settings: Settings, factory: async_sessionmaker[AsyncSession], clock: Clock
) -> PaymentProvider:
    if settings.payments == PaymentsMode.STRIPE:
        return StripeProvider(settings)
    return SimulatedProvider(
        factory, clock, settings.public_base_url, latency_ms=settings.simulated_latency_ms
    )
