"""The payment provider the app was built with (simulated or Stripe), for routes."""

from __future__ import annotations

from typing import Annotated

from vidivo.core.deps import provided
from vidivo.payments.provider import PaymentProvider

Payments = Annotated[PaymentProvider, provided(PaymentProvider)]
