"""What the engine asks the payment provider to do with a window's hold."""

from __future__ import annotations

from enum import StrEnum

from vidivo.calls.models import WindowState


class ProviderAction(StrEnum):
    HOLD = "hold"
    HOLD_FALLBACK = "hold_fallback"  # a smaller hold, tried once after a declined renewal
    HOLD_CARD = "hold_card"  # a declined renewal tried again on a new card (numbered)
    CAPTURE = "capture"
    CANCEL = "cancel"

    @property
    def places_hold(self) -> bool:
        return self in (ProviderAction.HOLD, ProviderAction.HOLD_FALLBACK, ProviderAction.HOLD_CARD)

    @property
    def in_flight_state(self) -> WindowState:
        if self == ProviderAction.CAPTURE:
            return WindowState.CAPTURING
        if self == ProviderAction.CANCEL:
            return WindowState.CANCELLING
        return WindowState.AUTHORIZING

    def with_guest_present(self, window_number: int) -> bool:
        """Holds the guest makes at the keyboard (the first, and one on a card just given
        in the call) may ask them to authenticate; the others are merchant-initiated."""
        return (self == ProviderAction.HOLD and window_number == 1) or (
            self == ProviderAction.HOLD_CARD
        )

    def key_part(self, attempt: int) -> str:
        """The action as its idempotency key names it: each new card is a new attempt."""
        return f"{self.value}_{attempt}" if self == ProviderAction.HOLD_CARD else self.value


def idempotency_key(
    session_id: str, window_number: int, action: ProviderAction, attempt: int
) -> str:
    return f"session:{session_id}:window:{window_number}:{action.key_part(attempt)}"
