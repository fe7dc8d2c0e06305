"""What a host has earned over a period, read from the ledger in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


def _sum_of(kind: LedgerKind) -> ColumnElement[int]:
    amount = case((LedgerEntry.kind == kind, LedgerEntry.amount_cents), else_=0)
    return func.coalesce(func.sum(amount), 0)


async def host_earnings(
    db: AsyncSession, host_id: str, start: datetime | None, end: datetime | None
) -> HostEarnings:
    """Earnings from ledger entries in [start, end); None leaves that side open."""
    paid_call = case(
        (
            (LedgerEntry.kind == LedgerKind.CAPTURE) & (LedgerEntry.amount_cents > 0),
            LedgerEntry.session_id,
        ),
    )
    query = select(
        func.count(func.distinct(paid_call)),
        _sum_of(LedgerKind.CAPTURE),
        _sum_of(LedgerKind.FEE),
        _sum_of(LedgerKind.FEE_REFUND),
        _sum_of(LedgerKind.REFUND),
    ).where(LedgerEntry.host_id == host_id)
    if start is not None:
        query = query.where(LedgerEntry.created_at >= start)
    if end is not None:
        query = query.where(LedgerEntry.created_at < end)
    sessions, gross, fees, fees_back, refunds = (await db.execute(query)).one()
    return HostEarnings(
        sessions=int(sessions),
        gross_cents=int(gross),
        platform_fees_cents=int(fees) - int(fees_back),
        refunds_cents=int(refunds),
    )
