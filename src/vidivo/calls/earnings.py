"""What a host has earned: over one stretch of time, or period by period, from the ledger.

The money rule (gross is what was captured; fees are kept less those handed back with
refunds; net is gross less fees less refunds) is written once, in `_money_columns` and
`HostEarnings`; the totals and the per-period figures both read it, in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from vidivo.calls.models import LedgerEntry, LedgerKind


@dataclass(frozen=True)
class HostEarnings:
    """Integer cents. `sessions` counts the calls that captured anything in the period."""

    sessions: int
    gross_cents: int
    platform_fees_cents: int  # fees kept, less the fees handed back with refunds
    refunds_cents: int

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.platform_fees_cents - self.refunds_cents

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> HostEarnings:
        """From the `_money_columns` of a result row."""
        sessions, gross, fees, fees_back, refunds = row
        return cls(
            sessions=int(sessions),
            gross_cents=int(gross),
            platform_fees_cents=int(fees) - int(fees_back),
            refunds_cents=int(refunds),
        )


NO_EARNINGS = HostEarnings(0, 0, 0, 0)


def _sum_of(kind: LedgerKind) -> ColumnElement[int]:
    amount = case((LedgerEntry.kind == kind, LedgerEntry.amount_cents), else_=0)
    return func.coalesce(func.sum(amount), 0)


def _money_columns() -> list[ColumnElement[int]]:
    """Paid calls, captured, fees, fees handed back, refunds: the order `of_row` reads."""
    paid_call = case(
        (
            (LedgerEntry.kind == LedgerKind.CAPTURE) & (LedgerEntry.amount_cents > 0),
            LedgerEntry.session_id,
        ),
    )
    return [
        func.count(func.distinct(paid_call)),
        _sum_of(LedgerKind.CAPTURE),
        _sum_of(LedgerKind.FEE),
        _sum_of(LedgerKind.FEE_REFUND),
        _sum_of(LedgerKind.REFUND),
    ]


async def host_earnings(
    db: AsyncSession, host_id: str, start: datetime | None, end: datetime | None
) -> HostEarnings:
    """Earnings from ledger entries in [start, end); None leaves that side open."""
    query = select(*_money_columns()).where(LedgerEntry.host_id == host_id)
    if start is not None:
        query = query.where(LedgerEntry.created_at >= start)
    if end is not None:
        query = query.where(LedgerEntry.created_at < end)
    row = (await db.execute(query)).one()
    return HostEarnings.of_row(row)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday to Sunday
    MONTH = "month"


# Without a `from`, this many periods up to `to`; never more than MAX_PERIODS in one answer.
DEFAULT_PERIODS = {Period.DAY: 14, Period.WEEK: 12, Period.MONTH: 12}
MAX_PERIODS = 400


@dataclass(frozen=True)
class PeriodSpan:
    """One period: [start, end) in UTC, and the local date it begins on."""

    first_day: date
    start: datetime
    end: datetime


def _first_day(day: date, period: Period) -> date:
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period == Period.MONTH:
        return day.replace(day=1)
    return day


def _next_day(day: date, period: Period) -> date:
    if period == Period.WEEK:
        return day + timedelta(days=7)
    if period == Period.MONTH:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def _previous_day(day: date, period: Period) -> date:
    if period == Period.WEEK:
        return day - timedelta(days=7)
    if period == Period.MONTH:
        return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
    return day - timedelta(days=1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # Local midnight, so a day is the host's day (23 or 25 hours long across a clock change).
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


class TooManyPeriods(ValueError):
    pass


def period_spans(
    period: Period, zone: ZoneInfo, start: datetime | None, end: datetime
) -> list[PeriodSpan]:
    """The periods, in the host's time zone, from the one holding `start` (None: the default
    count before `end`) to the one holding the last moment before `end`."""
    last = _first_day((end - timedelta(microseconds=1)).astimezone(zone).date(), period)
    if start is None:
        first = last
        for _ in range(DEFAULT_PERIODS[period] - 1):
            first = _previous_day(first, period)
    else:
        first = _first_day(start.astimezone(zone).date(), period)
    spans: list[PeriodSpan] = []
    day = first
    while day <= last:
        if len(spans) == MAX_PERIODS:
            raise TooManyPeriods(f"covers more than {MAX_PERIODS} periods; ask for fewer")
        following = _next_day(day, period)
        spans.append(PeriodSpan(day, _midnight(day, zone), _midnight(following, zone)))
        day = following
    return spans


async def host_earnings_by_period(
    db: AsyncSession, host_id: str, spans: list[PeriodSpan]
) -> list[HostEarnings]:
    """Each span's earnings, in one grouped query (spans in order, back to back)."""
    if not spans:
        return []
    bucket = case(
        *((LedgerEntry.created_at < span.end, index) for index, span in enumerate(spans))
    ).label("bucket")
    query = (
        select(bucket, *_money_columns())
        .where(
            LedgerEntry.host_id == host_id,
            LedgerEntry.created_at >= spans[0].start,
            LedgerEntry.created_at < spans[-1].end,
        )
        .group_by(bucket)
    )
    found = {int(index): HostEarnings.of_row(money) for index, *money in await db.execute(query)}
    return [found.get(index, NO_EARNINGS) for index in range(len(spans))]
