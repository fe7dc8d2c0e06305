"""Schemathesis hooks for the stateful run: bodies a real client would send, so the chains
the OpenAPI links describe (create a link → start a call on it → accept, end, refund…) get
past validation and reach the state they exist to test. Loaded with SCHEMATHESIS_HOOKS."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

# The simulated provider's test cards: approved, declined at once, declined on renewal,
# asking for 3-D Secure (the call then waits for `payment/confirm`).
CARDS = [
    "pm_card_visa",
    "pm_card_chargeDeclined",
    "pm_sim_decline_after_1",
    "pm_card_authenticationRequiredOnSetup",
]
LINK_FIELDS = {"rate_per_minute", "window_size_minutes", "label", "max_uses"}


def _is(context: Any, method: str, path: str) -> bool:
    operation = context.operation
    return operation is not None and (operation.method.upper(), operation.path) == (method, path)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    if not isinstance(body, dict):
        return st.just(body)
    if _is(context, "POST", "/v1/links"):
        # Generated timestamps are rarely in the future; half the links go without them.
        plain = {key: value for key, value in body.items() if key in LINK_FIELDS}
        return st.sampled_from([body, plain])
    if _is(context, "POST", "/v1/links/{short_code}/sessions") or _is(
        context, "POST", "/v1/sessions/{session_id}/payment-method"
    ):
        return st.sampled_from(CARDS).map(
            lambda card: {**body, "payment_method_id": card, **_no_max_spend(body)}
        )
    return st.just(body)


def _no_max_spend(body: dict[str, Any]) -> dict[str, Any]:
    return {"max_spend": None} if "max_spend" in body else {}
