"""The meter: how much of a call's time is billed, decided by the server alone.

Media flows browser to browser (or through TURN), so the server cannot see it stop; it sees
only the two signaling connections. The rule never lets the party who profits from stopping
the clock stop it:

- both parties connected: the time is billed;
- the guest's side gone while the host's is there: the time is *unconfirmed*. If the call
  resumes, it is billed in full (the media may have flowed all along); if the call ends
  before resuming (the grace runs out, or either side ends it), it is dropped, so the bill
  stops at the moment the guest's connection dropped;
- the host's side gone: not billed (the host cannot bill for time it was not there).

`Meter` is a value: each presence change or end returns a new one, so the meter of a call
is a pure fold of its timeline, stored in four columns of the call. Time is in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

# The rule in the words the guest page and the receipt show.
METER_RULE = (
    "You pay per started minute while you and the host are both connected. If your "
    "connection drops and the call resumes, the time in between is billed (the call may "
    "have gone on); if the call ends before you are back, billing stops at the moment your "
    "connection dropped. Time while the host's connection is down is never billed."
)


class StoredMeter(Protocol):
    banked_live_ms: int
    live_since: datetime | None
    unconfirmed_ms: int
    guest_away_since: datetime | None


def _ms(start: datetime, end: datetime) -> int:
    return max(0, int((end - start) / timedelta(milliseconds=1)))


@dataclass(frozen=True)
class Meter:
    confirmed_ms: int = 0
    # Both parties connected since then: the running stretch is billed.
    running_since: datetime | None = None
    # Guest-side time of the current pause, billed only if the call resumes.
    unconfirmed_ms: int = 0
    # The guest's side gone (the host's there) since then: an open unconfirmed stretch.
    guest_away_since: datetime | None = None

    @classmethod
    def of(cls, stored: StoredMeter) -> Meter:
        return cls(
            stored.banked_live_ms,
            stored.live_since,
            stored.unconfirmed_ms,
            stored.guest_away_since,
        )

    def store_on(self, stored: StoredMeter) -> None:
        stored.banked_live_ms = self.confirmed_ms
        stored.live_since = self.running_since
        stored.unconfirmed_ms = self.unconfirmed_ms
        stored.guest_away_since = self.guest_away_since

    def billed_ms(self, now: datetime) -> int:
        """Time billed for sure as of `now`."""
        running = _ms(self.running_since, now) if self.running_since else 0
        return self.confirmed_ms + running

    def reachable_ms(self, now: datetime) -> int:
        """Time billed if the call resumed `now`: what the holds must cover."""
        away = _ms(self.guest_away_since, now) if self.guest_away_since else 0
        return self.billed_ms(now) + self.unconfirmed_ms + away

    def presence(
        self, at: datetime, *, host_present: bool, guest_present: bool, cap_ms: int | None = None
    ) -> Meter:
        """The parties' connections changed at `at` (after the call went live)."""
        closed = self._closed(at)
        if host_present and guest_present:
            # A resume: the pause's guest-side time is billed after all.
            confirmed = closed.confirmed_ms + closed.unconfirmed_ms
            if cap_ms is not None:
                confirmed = min(confirmed, cap_ms)
            return Meter(confirmed, running_since=at)
        if host_present:
            return replace(closed, guest_away_since=at)
        return closed

    def end(self, at: datetime, cap_ms: int | None = None) -> Meter:
        """The call ends at `at`: a pause's unconfirmed time is dropped; nothing runs on."""
        billed = self.billed_ms(at)
        return Meter(billed if cap_ms is None else min(billed, cap_ms))

    def _closed(self, at: datetime) -> Meter:
        """Every open stretch folded in at `at`; nothing open."""
        away = _ms(self.guest_away_since, at) if self.guest_away_since else 0
        return Meter(self.billed_ms(at), None, self.unconfirmed_ms + away, None)
