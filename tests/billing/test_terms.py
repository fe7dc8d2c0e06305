"""The money rule (`CallTerms`), checked by example and by property over random calls."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidivo.calls.terms import CallTerms, SpendingCapTooLow, fee_basis_points
from vidivo.core.money import refunded_fee_cents

rates = st.integers(min_value=50, max_value=99_999)
window_sizes = st.integers(min_value=1, max_value=60)
metered_ms = st.integers(min_value=0, max_value=24 * 3600 * 1000)


def terms(
    rate: int = 250, window: int = 5, fee: str = "10", max_spend: int | None = None
) -> CallTerms:
    return CallTerms.at_start(
        rate_cents=rate,
        window_minutes=window,
        max_spend_cents=max_spend,
        fee_percent=Decimal(fee),
        reconnect_grace_seconds=60,
    )


def test_seven_and_a_half_minutes_at_2_50_bill_eight_minutes():
    assert terms().bill_cents(450_000, went_live=True) == 2000


def test_a_call_that_went_live_costs_at_least_one_minute():
    assert terms().billed_minutes(0, went_live=True) == 1
    assert terms().billed_minutes(1, went_live=True) == 1
    assert terms().billed_minutes(0, went_live=False) == 0


def test_every_started_minute_counts_to_the_millisecond():
    assert terms().billed_minutes(60_000, went_live=True) == 1
    assert terms().billed_minutes(60_001, went_live=True) == 2


def test_renewal_lead_is_a_minute_or_a_quarter_window_whichever_is_longer():
    assert terms(window=1).renewal_lead_ms() == 60_000
    assert terms(window=4).renewal_lead_ms() == 60_000
    assert terms(window=10).renewal_lead_ms() == 150_000
    assert terms(window=60).renewal_lead_ms() == 900_000


def test_fallback_hold_is_three_minutes_or_none_when_the_window_is_no_longer():
    assert terms(window=10).fallback_minutes(10) == 3
    assert terms(window=2).fallback_minutes(2) == 0
    assert terms(window=10).fallback_minutes(3) == 0


def test_platform_fee_rounds_half_up_to_the_cent():
    assert terms(fee="10").fee_cents(1250) == 125
    assert terms(fee="10").fee_cents(5) == 1  # 0.5 cent rounds up
    assert terms(fee="10").fee_cents(4) == 0
    assert terms(fee="100").fee_cents(999) == 999
    assert terms(fee="12.5").fee_cents(1000) == 125


def test_the_spending_cap_clamps_the_first_and_every_next_hold():
    capped = terms(rate=250, window=5, max_spend=1200)  # $12.00 buys 4 whole minutes
    assert capped.max_minutes == 4
    assert capped.first_window_minutes() == 4
    assert capped.cents_for(capped.first_window_minutes()) == 1000
    assert capped.next_window_minutes(covered_minutes=4) == 0
    assert terms(max_spend=2000).next_window_minutes(covered_minutes=5) == 3
    assert capped.max_spend_cents == 1000


def test_a_cap_below_one_minute_is_refused():
    with pytest.raises(SpendingCapTooLow):
        terms(rate=250, max_spend=249)


def test_terms_read_back_from_a_call_are_the_terms_it_started_with():
    class Row:
        pass

    row = Row()
    started = terms(rate=399, window=7, fee="12.5", max_spend=5000)
    started.store_on(row)  # type: ignore[arg-type]
    assert CallTerms.of(row) == started  # type: ignore[arg-type]
    assert started.fee_basis_points == 1250


@given(metered_ms, rates)
def test_billing_is_exactly_started_minutes_times_rate(ms, rate):
    billed = terms(rate=rate).bill_cents(ms, went_live=True)
    minutes = billed // rate
    assert billed == minutes * rate
    assert (minutes - 1) * 60_000 < max(ms, 1) <= minutes * 60_000


@given(st.integers(min_value=1, max_value=2000), window_sizes, rates)
def test_windows_capture_the_bill_without_gap_or_overlap(total_minutes, size, rate):
    call = terms(rate=rate, window=size)
    ms = total_minutes * 60_000
    count = -(-total_minutes // size)
    captures = [
        call.capture_cents(start_minute=(k - 1) * size, minutes=size, metered_ms=ms, went_live=True)
        for k in range(1, count + 2)
    ]
    assert sum(captures) == call.bill_cents(ms, went_live=True)
    assert all(0 < cents <= call.cents_for(size) for cents in captures[:-1])
    assert captures[-1] == 0


@given(window_sizes)
def test_the_next_hold_is_always_placed_before_the_window_ends(size):
    lead = terms(window=size).renewal_lead_ms()
    assert 60_000 <= lead <= size * 60_000 or size == 1
    assert lead <= size * 60_000


@given(st.integers(min_value=0, max_value=10**8), st.decimals(min_value=0, max_value=100, places=2))
def test_the_fee_never_exceeds_the_capture(captured, percent):
    fee = terms(fee=str(percent)).fee_cents(captured)
    assert 0 <= fee <= captured
    assert fee_basis_points(percent) == int(percent * 100)


@given(
    st.integers(min_value=1, max_value=10**7),
    st.integers(min_value=0, max_value=10_000),
    st.data(),
)
def test_fee_handed_back_with_refunds_never_exceeds_the_fee_taken(captured, bps, data):
    fee = captured * bps // 10_000
    parts = data.draw(st.lists(st.integers(min_value=1, max_value=captured), max_size=5))
    handed_back, left = 0, captured
    for part in parts:
        part = min(part, left)
        handed_back += refunded_fee_cents(fee, captured, part)
        left -= part
    assert 0 <= handed_back <= fee
