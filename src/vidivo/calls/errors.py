"""The calls domain's errors that more than one of its flows raises."""

from __future__ import annotations

from vidivo.core.errors import ApiError


class PaymentFailed(ApiError):
    code, status, message = "payment_failed", 402, "The card was declined."


class HostUnavailable(ApiError):
    code, status = "host_unavailable", 409
    message = "This host cannot take paid calls right now."


class HostAway(HostUnavailable):
    message = "The host is away and not taking calls right now."


class InvalidSessionState(ApiError):
    code, status = "invalid_state", 409
    message = "The call is not in a state that allows this."
