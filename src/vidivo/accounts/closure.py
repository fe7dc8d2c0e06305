"""Deleting a host's account: refused while a call or its money is not settled; otherwise its
links stop, its logins end and its personal data is erased, while every money record (calls,
windows, ledger, refunds, the payout account) stays as the law requires."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth import account
from vidivo.auth.models import User
from vidivo.calls import repository as calls
from vidivo.core.clock import Clock
from vidivo.core.errors import ApiError
from vidivo.links import service as links
from vidivo.mail.service import forget_recipient


class CallInProgress(ApiError):
    code, status, message = (
        "call_in_progress",
        409,
        "A call of yours is under way or waiting for you; end it before deleting your account.",
    )


class MoneyPending(ApiError):
    code, status, message = (
        "money_pending",
        409,
        "Money of one of your calls is still moving (a card hold, a capture or a refund); "
        "try again once it is settled.",
    )


async def delete_account(db: AsyncSession, clock: Clock, user_id: str) -> None:
    # Locked: two deletions, or a deletion and a profile change, do not interleave.
    user = await db.get_one(User, user_id, with_for_update=True, populate_existing=True)
    if await calls.host_has_call_underway(db, user.id):
        raise CallInProgress()
    if await calls.host_has_money_pending(db, user.id):
        raise MoneyPending()
    await links.deactivate_all_links(db, clock, user.id)
    for address in await account.erase_personal_data(db, clock, user):
        await forget_recipient(db, address)
