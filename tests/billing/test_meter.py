"""The meter as a pure fold of a call's timeline, held against a small reference model."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from vidivo.calls.meter import Meter

T0 = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)

# A timeline after the call went live (both present at 0): presence changes at increasing
# offsets (ms), then the end.
presences = st.tuples(st.booleans(), st.booleans())  # (host present, guest present)
steps = st.lists(st.tuples(st.integers(min_value=0, max_value=600_000), presences), max_size=30)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def fold(timeline: list[tuple[int, tuple[bool, bool]]], end_ms: int) -> int:
    meter = Meter().presence(at(0), host_present=True, guest_present=True)
    for offset, (host, guest) in timeline:
        meter = meter.presence(at(offset), host_present=host, guest_present=guest)
    return meter.end(at(end_ms)).confirmed_ms


def reference(timeline: list[tuple[int, tuple[bool, bool]]], end_ms: int) -> int:
    """Stretches with both present are billed; a pause's guest-only stretches are billed
    when a resume follows it; a pause the call ends in bills nothing after the drop."""
    points = [(0, (True, True)), *timeline, (end_ms, None)]
    billed = 0
    pause_guest_side = 0  # guest-only time of the pause in progress
    for (start, presence), (stop, _) in itertools.pairwise(points):
        assert presence is not None
        host, guest = presence
        length = stop - start
        if host and guest:
            billed += pause_guest_side + length  # a resume (or still running): confirmed
            pause_guest_side = 0
        elif host:
            pause_guest_side += length
    return billed


def timelines(
    draw_steps: list[tuple[int, tuple[bool, bool]]],
) -> list[tuple[int, tuple[bool, bool]]]:
    offset, timeline = 0, []
    for gap, presence in draw_steps:
        offset += gap
        timeline.append((offset, presence))
    return timeline


@given(steps, st.integers(min_value=0, max_value=600_000))
def test_the_meter_bills_what_the_reference_model_bills(draw_steps, tail):
    timeline = timelines(draw_steps)
    end_ms = (timeline[-1][0] if timeline else 0) + tail
    assert fold(timeline, end_ms) == reference(timeline, end_ms)


@given(st.lists(st.integers(min_value=1, max_value=55_000), min_size=1, max_size=60))
def test_a_guest_dropping_and_reconnecting_pays_for_all_of_it(away_stretches):
    """The dodge: the guest drops its connection again and again, back within the grace."""
    offset, timeline = 0, []
    for away in away_stretches:
        offset += 5_000  # five seconds connected
        timeline.append((offset, (True, False)))
        offset += away
        timeline.append((offset, (True, True)))
    end_ms = offset + 1_000
    assert fold(timeline, end_ms) == end_ms


@given(st.integers(min_value=0, max_value=600_000), st.integers(min_value=1, max_value=60_000))
def test_a_call_that_ends_in_a_guest_side_pause_bills_up_to_the_drop(live_ms, pause_ms):
    timeline = [(live_ms, (True, False))]
    assert fold(timeline, live_ms + pause_ms) == live_ms


@given(st.integers(min_value=0, max_value=600_000), st.integers(min_value=1, max_value=60_000))
def test_time_while_the_host_is_gone_is_never_billed(live_ms, away_ms):
    timeline = [(live_ms, (False, True)), (live_ms + away_ms, (True, True))]
    assert fold(timeline, live_ms + away_ms + 1_000) == live_ms + 1_000


def test_the_reachable_time_is_what_a_resume_would_confirm():
    meter = Meter().presence(at(0), host_present=True, guest_present=True)
    meter = meter.presence(at(60_000), host_present=True, guest_present=False)
    assert meter.billed_ms(at(90_000)) == 60_000
    assert meter.reachable_ms(at(90_000)) == 90_000
    resumed = meter.presence(at(90_000), host_present=True, guest_present=True)
    assert resumed.billed_ms(at(90_000)) == 90_000


def test_a_resume_never_bills_past_what_the_holds_cover():
    meter = Meter().presence(at(0), host_present=True, guest_present=True)
    meter = meter.presence(at(60_000), host_present=True, guest_present=False)
    resumed = meter.presence(at(400_000), host_present=True, guest_present=True, cap_ms=300_000)
    assert resumed.billed_ms(at(400_000)) == 300_000
