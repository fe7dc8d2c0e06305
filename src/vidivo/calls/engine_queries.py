"""The engine's reads and writes that are shaped for its hot path (one round trip each)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.calls import repository
from vidivo.calls.models import BillingWindow, CallSession


async def call_with_windows(
    db: AsyncSession, session_id: str
) -> tuple[CallSession | None, list[BillingWindow]]:
    """The call as stored now and its windows in order, in one query (the engine reads both
    at the start of every transaction)."""
    rows = (
        await db.execute(
            select(CallSession, BillingWindow)
            .outerjoin(BillingWindow, BillingWindow.session_id == CallSession.id)
            .where(CallSession.id == session_id)
            .order_by(BillingWindow.number)
            .execution_options(populate_existing=True)
        )
    ).all()
    if not rows:
        return None, []
    return rows[0][0], [window for _, window in rows if window is not None]


async def give_back_lease(db: AsyncSession, session: CallSession, owner: str) -> None:
    """The worker's lease ended in the transaction that leaves the call: folded into the
    call's own UPDATE when this transaction changes the call anyway (its version moves
    then regardless), else one UPDATE that leaves the version alone, as a claim does."""
    if db.is_modified(session):
        if session.lease_owner == owner:
            session.lease_owner = None
            session.lease_until = None
    else:
        await repository.release_lease(db, session.id, owner)
