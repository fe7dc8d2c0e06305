"""A host's availability as guests see it before paying: `available` while one of the host's
dashboards is open, `away` when the host says so, `offline` otherwise.

Presence lives in the database (`host_dashboards`), so every API instance sees the dashboards
open on the others. Each open host events socket has a row that its heartbeat refreshes; a row
not refreshed within the presence timeout (the socket idle timeout: its instance died without
closing it) no longer counts. A dashboard closed cleanly stops counting at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vidivo.auth.models import HostDashboard, User


class Availability(StrEnum):
    AVAILABLE = "available"
    OFFLINE = "offline"
    AWAY = "away"


def availability_of(*, away: bool, dashboard_open: bool) -> Availability:
    """The one rule: the host's own `away` wins; else an open dashboard means available."""
    if away:
        return Availability.AWAY
    return Availability.AVAILABLE if dashboard_open else Availability.OFFLINE


def dashboard_open_clause(
    host_id: ColumnElement[str] | InstrumentedAttribute[str] | str, fresh_since: datetime
) -> ColumnElement[bool]:
    """Whether the host has a dashboard whose heartbeat is recent: for a SELECT's columns."""
    return exists().where(HostDashboard.host_id == host_id, HostDashboard.seen_at >= fresh_since)


def fresh_since(now: datetime, presence_timeout: timedelta) -> datetime:
    return now - presence_timeout


def presence_timeout(idle_timeout_seconds: int) -> timedelta:
    """How long a dashboard row counts after its last refresh. A live socket pings at least
    every idle timeout and its row is rewritten at most every half of it, so rows of live
    sockets are never older than 1.5 idle timeouts; twice it leaves a margin. This is also the
    most a dead instance's dashboard can go on counting."""
    return timedelta(seconds=2 * idle_timeout_seconds)


def refresh_interval(idle_timeout_seconds: int) -> timedelta:
    """How often a socket's heartbeat rewrites its row (not on every ping: fewer writes)."""
    return timedelta(seconds=idle_timeout_seconds / 2)


async def availability(
    db: AsyncSession, host: User, now: datetime, presence_timeout: timedelta
) -> Availability:
    is_open = await db.scalar(
        select(dashboard_open_clause(host.id, fresh_since(now, presence_timeout)))
    )
    return availability_of(away=host.away, dashboard_open=bool(is_open))


async def dashboard_opened(db: AsyncSession, host_id: str, now: datetime) -> str:
    """A dashboard of the host connected: its presence row's id."""
    row = HostDashboard(host_id=host_id, seen_at=now)
    db.add(row)
    await db.flush()
    # Rows left by an instance that died are of no use to anyone: cleared as hosts come back.
    await db.execute(
        delete(HostDashboard)
        .where(HostDashboard.host_id == host_id, HostDashboard.seen_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    return row.id


async def dashboard_seen(db: AsyncSession, dashboard_id: str, now: datetime) -> None:
    await db.execute(
        update(HostDashboard)
        .where(HostDashboard.id == dashboard_id)
        .values(seen_at=now)
        .execution_options(synchronize_session=False)
    )


async def dashboard_closed(db: AsyncSession, dashboard_id: str) -> None:
    await db.execute(
        delete(HostDashboard)
        .where(HostDashboard.id == dashboard_id)
        .execution_options(synchronize_session=False)
    )
