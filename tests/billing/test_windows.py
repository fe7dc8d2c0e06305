"""Window arithmetic, checked by example and by property over random calls."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from vidivo.calls import windows

rates = st.integers(min_value=50, max_value=99_999)
window_sizes = st.integers(min_value=1, max_value=60)
live_seconds = st.integers(min_value=0, max_value=24 * 3600)


def test_seven_and_a_half_minutes_at_2_50_bill_eight_minutes():
    assert windows.billed_cents(450, 250, went_live=True) == 2000


def test_a_call_that_went_live_costs_at_least_one_minute():
    assert windows.billed_minutes(0, went_live=True) == 1
    assert windows.billed_minutes(1, went_live=True) == 1
    assert windows.billed_minutes(0, went_live=False) == 0


def test_every_started_minute_counts():
    assert windows.billed_minutes(60, went_live=True) == 1
    assert windows.billed_minutes(61, went_live=True) == 2


def test_renewal_lead_is_a_minute_or_a_quarter_window_whichever_is_longer():
    assert windows.renewal_lead_seconds(1) == 60
    assert windows.renewal_lead_seconds(4) == 60
    assert windows.renewal_lead_seconds(10) == 150
    assert windows.renewal_lead_seconds(60) == 900


def test_fallback_hold_is_three_minutes_or_the_window():
    assert windows.fallback_hold_minutes(10) == 3
    assert windows.fallback_hold_minutes(2) == 2


def test_platform_fee_rounds_half_up_to_the_cent():
    assert windows.platform_fee_cents(1250, Decimal("10")) == 125
    assert windows.platform_fee_cents(5, Decimal("10")) == 1  # 0.5 cent rounds up
    assert windows.platform_fee_cents(4, Decimal("10")) == 0
    assert windows.platform_fee_cents(999, Decimal("100")) == 999


@given(live_seconds, rates)
def test_billing_is_exactly_started_minutes_times_rate(seconds, rate):
    billed = windows.billed_cents(seconds, rate, went_live=True)
    minutes = billed // rate
    assert billed == minutes * rate
    assert (minutes - 1) * 60 < max(seconds, 1) <= minutes * 60


@given(st.integers(min_value=1, max_value=2000), window_sizes)
def test_windows_split_the_minutes_without_gap_or_overlap(total_minutes, size):
    count = windows.windows_needed(total_minutes, size)
    used = [windows.minutes_used_in_window(k, total_minutes, size) for k in range(1, count + 1)]
    assert sum(used) == total_minutes
    assert all(0 < minutes <= size for minutes in used)
    assert windows.minutes_used_in_window(count + 1, total_minutes, size) == 0
    for minute in range(0, total_minutes, max(1, total_minutes // 7)):
        k = windows.window_of_minute(minute, size)
        assert (k - 1) * size <= minute < k * size


@given(window_sizes)
def test_the_next_hold_is_always_placed_before_the_window_ends(size):
    lead = windows.renewal_lead_seconds(size)
    assert 60 <= lead <= size * 60 or size == 1
    assert lead <= size * 60


@given(st.integers(min_value=0, max_value=10**8), st.decimals(min_value=0, max_value=100, places=2))
def test_the_fee_never_exceeds_the_capture(captured, percent):
    fee = windows.platform_fee_cents(captured, percent)
    assert 0 <= fee <= captured
