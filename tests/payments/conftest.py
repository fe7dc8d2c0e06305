"""Payments tests: the fake Stripe's fixtures (started only by tests that ask for them)."""

from tests.payments.fake_stripe.servers import (
    _reset_stripe_standin,
    localstripe_url,
    stripe_standin,
)

__all__ = ["_reset_stripe_standin", "localstripe_url", "stripe_standin"]
