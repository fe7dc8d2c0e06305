"""Suspending a host: its access ends, its calls end, and it is told what it is still owed.

The account is marked suspended (and its logins revoked) first, in its own transaction:
from that commit on every token of the host is refused and its links take no new calls, so
the calls found afterwards are all there will be. Each of them is then ended the way a
host's decline or end is, with reason `host_suspended`, and the billing engine settles it:
a call that never went live is declined and its hold released; a live or paused one ends
now and the minutes used are captured. Running it again changes nothing more (it finishes
a run that was interrupted).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.auth import service as auth
from vidivo.auth.models import User
from vidivo.calls.earnings import HostEarnings, host_earnings
from vidivo.calls.engine import BillingEngine
from vidivo.calls.models import CallSession, SessionState
from vidivo.calls.timeline import begin_ending
from vidivo.core.clock import Clock
from vidivo.core.hub import Hub
from vidivo.core.money import format_cents
from vidivo.core.races import made_again_on_lost_race
from vidivo.links.public_cache import PublicLinkCache
from vidivo.mail.service import queue_email

HOST_SUSPENDED = "host_suspended"
# Calls a suspension ends: every one not yet over, including a start whose first hold is
# still in flight (the engine releases whatever it held).
OPEN_STATES = (
    SessionState.PENDING_PAYMENT,
    SessionState.WAITING_FOR_HOST,
    SessionState.LIVE,
    SessionState.PAUSED,
)


@dataclass(frozen=True)
class Suspension:
    host_id: str
    newly_suspended: bool  # False: the host already was (this run only finished the job)
    declined_calls: int  # calls that never went live: declined, their holds released
    ended_calls: int  # calls that were live or paused: ended, the minutes used captured


async def suspend_host(
    factory: async_sessionmaker[AsyncSession],
    clock: Clock,
    billing: BillingEngine,
    public_links: PublicLinkCache,
    hub: Hub,
    host_id: str,
) -> Suspension:
    async with factory() as db:
        newly = await auth.suspend_account(db, clock, host_id)
        await db.commit()
    # Instances sharing the hub drop the host's cached public links now.
    await public_links.changed(hub, host_id=host_id)
    async with factory() as db:
        open_calls = list(
            await db.scalars(
                select(CallSession.id).where(
                    CallSession.host_id == host_id, CallSession.state.in_(OPEN_STATES)
                )
            )
        )
    declined = ended = 0
    ending: list[str] = []
    for session_id in open_calls:
        went_live = await _end_now(factory, clock, session_id)
        if went_live is None:
            continue  # it ended by itself meanwhile
        ending.append(session_id)
        if went_live:
            ended += 1
        else:
            declined += 1
    for session_id in ending:
        await billing.advance(session_id)
    suspension = Suspension(host_id, newly, declined, ended)
    if newly:
        async with factory() as db:
            await _queue_statement(db, clock, suspension)
            await db.commit()
    return suspension


async def _end_now(
    factory: async_sessionmaker[AsyncSession], clock: Clock, session_id: str
) -> bool | None:
    """Start ending one call; whether it had gone live (None: it was over already)."""

    async def once() -> bool | None:
        async with factory() as db:
            session = await db.get_one(CallSession, session_id, populate_existing=True)
            if session.state not in OPEN_STATES:
                return None
            went_live = session.went_live_at is not None
            begin_ending(session, clock.now(), HOST_SUSPENDED)
            await db.commit()  # raced by a worker or a request: made again on the call as is
        return went_live

    return await made_again_on_lost_race(
        once, "A call of this host changed too often to end it; run the suspension again."
    )


async def _queue_statement(db: AsyncSession, clock: Clock, suspension: Suspension) -> None:
    host = await db.get_one(User, suspension.host_id)
    earned = await host_earnings(db, host.id, None, None)
    queue_email(
        db,
        clock,
        recipient=host.email,
        subject="Your Vidivo account is suspended",
        body=statement_text(host.display_name, suspension, earned),
    )


def statement_text(display_name: str, suspension: Suspension, earned: HostEarnings) -> str:
    return (
        f"Hello {display_name},\n\n"
        "Your Vidivo host account is suspended. You can no longer sign in, and your call "
        "links take no new calls.\n\n"
        f"Waiting calls declined: {suspension.declined_calls} (the guests' card holds are "
        "released; nothing is charged).\n"
        f"Live calls ended: {suspension.ended_calls} (the guests pay the minutes used, "
        "which are captured as usual).\n\n"
        "Money already captured is paid out to your connected payout account by the payment "
        "provider as usual. Your earnings up to the suspension:\n"
        f"  Paid calls: {earned.sessions}\n"
        f"  Gross: ${format_cents(earned.gross_cents)}\n"
        f"  Platform fees: ${format_cents(earned.platform_fees_cents)}\n"
        f"  Refunds: ${format_cents(earned.refunds_cents)}\n"
        f"  Net to you: ${format_cents(earned.net_cents)}\n"
    )
