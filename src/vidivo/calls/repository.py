"""The calls domain's queries: sessions, their windows, pages of a host's calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth.availability import dashboard_open_clause
from vidivo.auth.models import User
from vidivo.calls.models import (
    BillingWindow,
    CallSession,
    RefundState,
    SessionRefund,
    SessionState,
    WindowState,
)
from vidivo.core.db import looks_like_id
from vidivo.core.errors import NotFound


async def load_session(db: AsyncSession, session_id: str) -> CallSession:
    """The call as stored now (not as this unit of work first saw it), or 404."""
    session = (
        await db.get(CallSession, session_id, populate_existing=True)
        if looks_like_id(session_id)
        else None
    )
    if session is None:
        raise NotFound("No call session with this id.")
    return session


async def windows_of(db: AsyncSession, session_id: str) -> list[BillingWindow]:
    return list(
        await db.scalars(
            select(BillingWindow)
            .where(BillingWindow.session_id == session_id)
            .order_by(BillingWindow.number)
        )
    )


async def record_customer(
    db: AsyncSession, session_id: str, customer_id: str, card: tuple[str, str] | None
) -> None:
    """The guest's customer at the provider, and the card's brand and last 4, written in one
    statement (the call was made in this request: nothing needs reading first). The version
    moves as an ORM update would move it."""
    values: dict[str, object] = {"customer_id": customer_id, "version": CallSession.version + 1}
    if card is not None:
        values["card_brand"], values["card_last4"] = card
    await db.execute(
        update(CallSession)
        .where(CallSession.id == session_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class StartingCall:
    """What the end of a call's start decides on, read in one query."""

    session: CallSession
    billing_windows: list[BillingWindow]
    host: User
    dashboard_open: bool


async def starting_call(
    db: AsyncSession, session_id: str, dashboards_since: datetime
) -> StartingCall:
    """The call as stored now, its windows in order, its host as stored now (a suspension
    may have come meanwhile) and whether one of the host's dashboards is open, in one read."""
    rows = (
        await db.execute(
            select(
                CallSession,
                BillingWindow,
                User,
                dashboard_open_clause(CallSession.host_id, dashboards_since).label("open"),
            )
            .join(User, User.id == CallSession.host_id)
            .outerjoin(BillingWindow, BillingWindow.session_id == CallSession.id)
            .where(CallSession.id == session_id)
            .order_by(BillingWindow.number)
            .execution_options(populate_existing=True)
        )
    ).all()
    if not rows:
        raise NotFound("No call session with this id.")
    session, _, host, dashboard_open = rows[0]
    billing_windows = [window for _, window, _, _ in rows if window is not None]
    return StartingCall(session, billing_windows, host, bool(dashboard_open))


async def windows_by_session(
    db: AsyncSession, session_ids: Iterable[str]
) -> dict[str, list[BillingWindow]]:
    """The windows of many calls in one query (a listing never asks once per call)."""
    ids = list(session_ids)
    found: dict[str, list[BillingWindow]] = defaultdict(list)
    if not ids:
        return found
    rows = await db.scalars(
        select(BillingWindow)
        .where(BillingWindow.session_id.in_(ids))
        .order_by(BillingWindow.session_id, BillingWindow.number)
    )
    for window in rows:
        found[window.session_id].append(window)
    return found


def host_sessions_query(
    host_id: str, *, state: str | None, link_id: str | None
) -> Select[CallSession]:
    query = select(CallSession).where(CallSession.host_id == host_id)
    if state is not None:
        query = query.where(CallSession.state == state)
    if link_id is not None:
        query = query.where(CallSession.link_id == link_id)
    return query


async def find_by_hold(db: AsyncSession, hold_id: str) -> CallSession | None:
    """The call a provider payment (hold) belongs to."""
    window = await db.scalar(select(BillingWindow).where(BillingWindow.provider_hold_id == hold_id))
    return None if window is None else await db.get(CallSession, window.session_id)


# The worker's leases: which calls are due, who advances each, for how long.


async def claim_due_sessions(
    db: AsyncSession,
    now: datetime,
    *,
    owner: str,
    lease: timedelta,
    skip: set[str],
    limit: int,
) -> list[str]:
    """Lease up to `limit` due calls to `owner`; `SKIP LOCKED` lets workers claim side by side
    on PostgreSQL without waiting for each other's rows."""
    due = (
        select(CallSession.id)
        .where(
            CallSession.next_action_at <= now,
            or_(CallSession.lease_until.is_(None), CallSession.lease_until < now),
            CallSession.id.not_in(skip),
        )
        .order_by(CallSession.next_action_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(await db.scalars(due))
    if ids:
        await db.execute(
            update(CallSession)
            .where(CallSession.id.in_(ids))
            .values(lease_owner=owner, lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    return ids


async def release_lease(db: AsyncSession, session_id: str, owner: str) -> None:
    await db.execute(
        update(CallSession)
        .where(CallSession.id == session_id, CallSession.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def renew_lease(db: AsyncSession, session_id: str, owner: str, until: datetime) -> bool:
    """Extend `owner`'s lease on the call; False if another worker claimed it meanwhile."""
    renewed = await db.execute(
        update(CallSession)
        .where(CallSession.id == session_id, CallSession.lease_owner == owner)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def next_due_at(db: AsyncSession) -> datetime | None:
    return await db.scalar(select(func.min(CallSession.next_action_at)))


async def open_calls_by_state(
    db: AsyncSession, open_states: list[SessionState]
) -> dict[SessionState, int]:
    """One grouped count over the open states; the state index keeps the ended calls (nearly
    every row) out of it."""
    rows = await db.execute(
        select(CallSession.state, func.count())
        .where(CallSession.state.in_(open_states))
        .group_by(CallSession.state)
    )
    return {SessionState(state): int(n) for state, n in rows}


# What keeps a host's account open (`accounts.closure`).

# A call not yet over: a guest is paying, waiting, or about to be held.
UNDERWAY_STATES = (
    SessionState.PENDING_PAYMENT,
    SessionState.WAITING_FOR_HOST,
    SessionState.LIVE,
    SessionState.PAUSED,
)
# A hold on a guest's card not yet captured or released, or a provider call about it in flight.
UNSETTLED_WINDOW_STATES = (
    WindowState.AUTHORIZING,
    WindowState.HELD,
    WindowState.CAPTURING,
    WindowState.CANCELLING,
)


async def host_has_call_underway(db: AsyncSession, host_id: str) -> bool:
    found = await db.scalar(
        select(CallSession.id)
        .where(CallSession.host_id == host_id, CallSession.state.in_(UNDERWAY_STATES))
        .limit(1)
    )
    return found is not None


async def host_has_money_pending(db: AsyncSession, host_id: str) -> bool:
    """A call still settling, a hold not yet captured or released, or a refund under way."""
    settling = select(CallSession.id).where(
        CallSession.host_id == host_id, CallSession.state == SessionState.ENDING
    )
    holding = (
        select(BillingWindow.id)
        .join(CallSession, CallSession.id == BillingWindow.session_id)
        .where(CallSession.host_id == host_id, BillingWindow.state.in_(UNSETTLED_WINDOW_STATES))
    )
    refunding = (
        select(SessionRefund.id)
        .join(CallSession, CallSession.id == SessionRefund.session_id)
        .where(CallSession.host_id == host_id, SessionRefund.state == RefundState.PENDING)
    )
    for query in (settling, holding, refunding):
        if await db.scalar(query.limit(1)) is not None:
            return True
    return False
