"""The calls domain's queries: sessions, their windows, pages of a host's calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.calls.models import BillingWindow, CallSession
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
