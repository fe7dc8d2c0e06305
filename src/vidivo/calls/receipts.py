"""A call's receipt, read once for whoever may see it: its guest or host through the API, or
anyone holding the signed receipt address (`receipt_links`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth.models import User
from vidivo.calls import ledger, repository, views
from vidivo.calls.models import CallSession, LedgerKind
from vidivo.calls.money_schemas import Receipt
from vidivo.calls.receipt_links import ReceiptLinks
from vidivo.core.errors import NotFound


async def receipt_of(db: AsyncSession, session: CallSession, links: ReceiptLinks) -> Receipt:
    host = await db.get_one(User, session.host_id)
    totals = await ledger.totals(db, session.id)
    return views.receipt(
        session,
        await repository.windows_of(db, session.id),
        host_display_name=host.display_name,
        captured_cents=totals[LedgerKind.CAPTURE],
        refunded_cents=totals[LedgerKind.REFUND],
        receipt_url=links.url(session.id),
    )


async def signed_receipt(
    db: AsyncSession, links: ReceiptLinks, session_id: str, signature: str
) -> Receipt:
    """The receipt the address names; `NotFound` alike for a wrong signature and for no such
    call, so the page tells nothing about which ids exist."""
    if not links.verify(session_id, signature):
        raise NotFound("No receipt at this address.")
    session = await db.get(CallSession, session_id)
    if session is None:
        raise NotFound("No receipt at this address.")
    return await receipt_of(db, session, links)
