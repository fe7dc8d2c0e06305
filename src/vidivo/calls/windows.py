"""Window arithmetic: pure functions, integer cents, no I/O.

A call is billed per *started* minute of live time. Window k (from 1) covers live minutes
[(k-1)·W, k·W); its hold is rate × W; when the call ends, each window is captured for the
minutes used in it and the rest of its hold is released.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

SECONDS_PER_MINUTE = 60
MIN_RENEWAL_LEAD_SECONDS = 60


def billed_minutes(live_seconds: int, *, went_live: bool) -> int:
    """Started minutes of live time; a call that went live is at least one minute."""
    if live_seconds < 0:
        raise ValueError("live time cannot be negative")
    minutes = -(-live_seconds // SECONDS_PER_MINUTE)  # ceiling division, in integers
    return max(minutes, 1) if went_live else minutes


def billed_minutes_from_ms(live_ms: int, *, went_live: bool) -> int:
    """The same rule on the engine's millisecond clock: 60.001 s is a second minute."""
    if live_ms < 0:
        raise ValueError("live time cannot be negative")
    minutes = -(-live_ms // (SECONDS_PER_MINUTE * 1000))
    return max(minutes, 1) if went_live else minutes


def billed_cents(live_seconds: int, rate_cents: int, *, went_live: bool) -> int:
    return billed_minutes(live_seconds, went_live=went_live) * rate_cents


def hold_cents(rate_cents: int, window_minutes: int) -> int:
    return rate_cents * window_minutes


def window_of_minute(minute_index: int, window_minutes: int) -> int:
    """The window (from 1) that live minute `minute_index` (from 0) falls in."""
    return minute_index // window_minutes + 1


def minutes_used_in_window(window: int, total_minutes: int, window_minutes: int) -> int:
    start = (window - 1) * window_minutes
    return max(0, min(window_minutes, total_minutes - start))


def minutes_used_in_window_at(start_minute: int, minutes: int, total_minutes: int) -> int:
    """Minutes of a window [start, start + minutes) that a call of `total_minutes` used."""
    return max(0, min(minutes, total_minutes - start_minute))


def windows_needed(total_minutes: int, window_minutes: int) -> int:
    return max(1, -(-total_minutes // window_minutes))


def renewal_lead_seconds(window_minutes: int) -> int:
    """How long before a window ends the next hold is placed: max(60 s, 25 % of the window),
    never more than the window itself."""
    window_seconds = window_minutes * SECONDS_PER_MINUTE
    return min(window_seconds, max(MIN_RENEWAL_LEAD_SECONDS, window_seconds // 4))


def fallback_hold_minutes(window_minutes: int) -> int:
    """After a declined renewal, one retry holds fewer minutes: min(3, W)."""
    return min(3, window_minutes)


def platform_fee_cents(captured_cents: int, fee_percent: Decimal) -> int:
    """The platform's share of a capture, rounded half up to the cent."""
    fee = (Decimal(captured_cents) * fee_percent / 100).quantize(Decimal(1), ROUND_HALF_UP)
    return min(int(fee), captured_cents)
