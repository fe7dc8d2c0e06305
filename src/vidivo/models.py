"""Import every domain's tables so metadata (migrations, tests) sees them all."""

from __future__ import annotations


def load_all_models() -> None:
    import vidivo.auth.models
    import vidivo.calls.models
    import vidivo.idempotency.models
    import vidivo.links.models
    import vidivo.mail.models
    import vidivo.payments.sim_models
    import vidivo.payouts.models
    import vidivo.webhooks.models  # noqa: F401
