"""The one source of time for services: real in production, steppable in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Real time run `speed` times faster from `epoch`: for tests with several processes."""

    def __init__(self, epoch: datetime, speed: int) -> None:
        self._epoch = epoch
        self._speed = speed

    def now(self) -> datetime:
        return self._epoch + (datetime.now(UTC) - self._epoch) * self._speed


class TestClock:
    """A clock that only moves when told to."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment
