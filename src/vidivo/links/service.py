"""Call links: creation with the seed's bounds, the host's pages, public lookup, soft delete."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vidivo.auth.availability import availability_of, dashboard_open_clause, fresh_since
from vidivo.auth.models import User
from vidivo.core.clock import Clock
from vidivo.core.db import looks_like_id, new_id, utc_now_seconds
from vidivo.core.errors import ApiError, Forbidden, NotFound, ValidationFailed
from vidivo.core.money import format_cents, parse_amount_to_cents
from vidivo.core.pagination import MAX_LIMIT, CursorSigner, keyset_page
from vidivo.core.schemas import format_timestamp
from vidivo.links.codes import looks_like_short_code, new_short_code
from vidivo.links.models import Link
from vidivo.links.public_cache import PublicLinkCache, PublicView
from vidivo.links.schemas import HostPublic, LinkCreate, LinkLookupResponse, PublicLink
from vidivo.payouts import service as payouts

_CODE_ATTEMPTS = 5


class StripeNotConnected(ApiError):
    code, status = "stripe_not_connected", 402
    message = "Finish payout onboarding (Stripe) before creating call links."


class LinkExpired(ApiError):
    code, status, message = "link_expired", 410, "This call link has expired."


class LinkDeactivated(NotFound):
    """The API's plain 404 (the published contract), kept apart so the guest page can say the
    host switched the link off rather than that the address is wrong."""


class LinkExhausted(ApiError):
    code, status, message = (
        "link_exhausted",
        410,
        "This call link has reached its maximum uses.",
    )


@dataclass(frozen=True)
class LinkPage:
    links: list[Link]
    cursor: str | None
    has_more: bool
    limit: int


def validate_times(body: LinkCreate, now: datetime) -> None:
    errors: list[dict[str, str]] = []
    if body.expires_at is not None and body.expires_at <= now:
        errors.append({"field": "expires_at", "message": "must be in the future"})
    start, end = body.scheduled_start, body.scheduled_end
    if start is not None and end is not None and start >= end:
        errors.append({"field": "scheduled_end", "message": "must be after scheduled_start"})
    if end is not None and end <= now:
        errors.append({"field": "scheduled_end", "message": "must be in the future"})
    if start is not None and body.expires_at is not None and start >= body.expires_at:
        errors.append({"field": "scheduled_start", "message": "must be before expires_at"})
    if errors:
        raise ValidationFailed("The link's dates are not valid.", details=errors)


async def ensure_can_create_links(db: AsyncSession, host: User) -> None:
    if not host.is_verified_host:
        raise Forbidden("Only a verified host can create call links; verify your email first.")
    if not await payouts.charges_enabled(db, host.id):
        raise StripeNotConnected()


def new_link_values(host_id: str, body: LinkCreate, now: datetime) -> dict[str, Any]:
    """A new link's row, every column: a fresh id and short code, the body's terms, live."""
    return {
        "id": new_id(),
        "short_code": new_short_code(),
        "host_id": host_id,
        "rate_cents": parse_amount_to_cents(body.rate_per_minute),
        "window_size_minutes": body.window_size_minutes,
        "expires_at": body.expires_at,
        "max_uses": body.max_uses,
        "use_count": 0,
        "label": body.label,
        "scheduled_start": body.scheduled_start,
        "scheduled_end": body.scheduled_end,
        "is_active": True,
        "deleted_at": None,
        "created_at": utc_now_seconds(now),
    }


async def create_link(db: AsyncSession, clock: Clock, host: User, body: LinkCreate) -> Link:
    await ensure_can_create_links(db, host)
    now = clock.now()
    validate_times(body, now)
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    for _ in range(_CODE_ATTEMPTS):
        values = new_link_values(host.id, body, now)
        # One statement that skips a taken code rather than failing on it: a failed INSERT
        # would doom the whole transaction (and SQLite has no dependable savepoints). A
        # duplicate among 36^10 codes is not expected. The row is written with Core; the
        # entity returned is not tracked by the session (nothing changes it afterwards).
        statement = (
            insert(Link)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Link.short_code])
            .returning(Link.id)
        )
        if await db.scalar(statement) is not None:
            return Link(**values)
    raise ApiError("Could not allocate a short code; try again.")


async def list_links(
    db: AsyncSession,
    signer: CursorSigner,
    host: User,
    *,
    limit: int,
    cursor: str | None,
    active: bool | None,
) -> LinkPage:
    query = select(Link).where(Link.host_id == host.id)
    if active is not None:
        query = query.where(Link.is_active.is_(active))
    rows, next_cursor, has_more = await keyset_page(
        db, query, Link.id, signer, owner=host.id, limit=limit, cursor=cursor
    )
    return LinkPage(rows, next_cursor, has_more, min(limit, MAX_LIMIT))


async def _load_public_view(
    engine: AsyncEngine, base_url: str, code: str, dashboards_since: datetime
) -> PublicView:
    # One indexed SELECT of plain columns: no ORM objects, no session bookkeeping.
    query = (
        select(
            Link.short_code,
            Link.host_id,
            Link.rate_cents,
            Link.window_size_minutes,
            Link.is_active,
            Link.scheduled_start,
            Link.scheduled_end,
            Link.expires_at,
            Link.max_uses,
            Link.use_count,
            User.display_name,
            User.bio,
            User.suspended_at,
            User.away,
            dashboard_open_clause(Link.host_id, dashboards_since).label("dashboard_open"),
        )
        .join(User, User.id == Link.host_id)
        .where(Link.short_code == code)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    stored_at = time.monotonic()
    if row is None or not row.is_active or row.suspended_at is not None:
        return PublicView(
            host_id=row.host_id if row else None,
            body=None,
            expires_at=None,
            exhausted=False,
            stored_at=stored_at,
        )
    body = LinkLookupResponse(
        link=PublicLink(
            short_code=row.short_code,
            url=f"{base_url}/c/{row.short_code}",
            host=HostPublic(
                display_name=row.display_name,
                bio=row.bio,
                availability=availability_of(
                    away=row.away, dashboard_open=bool(row.dashboard_open)
                ),
            ),
            rate_per_minute=format_cents(row.rate_cents),
            window_size_minutes=row.window_size_minutes,
            is_active=row.is_active,
            scheduled_start=row.scheduled_start,
            scheduled_end=row.scheduled_end,
        )
    ).model_dump_json()
    return PublicView(
        host_id=row.host_id,
        body=body.encode(),
        expires_at=row.expires_at,
        exhausted=row.max_uses is not None and row.use_count >= row.max_uses,
        stored_at=stored_at,
    )


async def public_view_body(
    engine: AsyncEngine,
    cache: PublicLinkCache,
    clock: Clock,
    base_url: str,
    short_code: str,
    presence_timeout: timedelta,
) -> bytes:
    """The public `GET /v1/links/{short_code}` body, or the seed's 404/410; the hot path.

    The host's availability is part of the cached body: a dashboard opening or closing, or the
    host's away switch, drops the host's entries on every instance, so the cache adds no delay
    to those. Only a dashboard on an instance that died goes on counting, for the presence
    timeout (plus the cache's seconds)."""
    code = short_code.lower()
    if not looks_like_short_code(code):
        raise NotFound("No call link with this code.")
    since = fresh_since(clock.now(), presence_timeout)
    view = await cache.get_or_load(code, lambda: _load_public_view(engine, base_url, code, since))
    if view.body is None:
        raise NotFound("No call link with this code.")
    if view.expires_at is not None and view.expires_at <= clock.now():
        raise LinkExpired()
    if view.exhausted:
        raise LinkExhausted()
    return view.body


async def get_usable_for_view(db: AsyncSession, clock: Clock, short_code: str) -> tuple[Link, User]:
    """The link behind a short code as a guest may open it, or the seed's 404/410."""
    code = short_code.lower()
    if not looks_like_short_code(code):
        raise NotFound("No call link with this code.")
    row = (
        await db.execute(
            select(Link, User)
            .join(User, User.id == Link.host_id)
            .where(Link.short_code == code)
            # As the row is now, even where this session loaded the link before a use was
            # taken by a statement that left loaded entities alone.
            .execution_options(populate_existing=True)
        )
    ).first()
    # A suspended or deleted host's links take no calls: to guests they are as gone as
    # links that never were.
    if row is None or row[1].suspended_at is not None or row[1].deleted_at is not None:
        raise NotFound("No call link with this code.")
    link, host = row[0], row[1]
    if not link.is_active:
        raise LinkDeactivated("No call link with this code.")
    if link.is_expired(clock.now()):
        raise LinkExpired()
    if link.is_exhausted:
        raise LinkExhausted()
    return link, host


class LinkNotInSchedule(ApiError):
    code, status, message = "link_not_in_schedule", 409, "This call link is not open right now."


def ensure_in_schedule(link: Link, now: datetime) -> None:
    before = link.scheduled_start is not None and now < link.scheduled_start
    after = link.scheduled_end is not None and now >= link.scheduled_end
    if before or after:
        details = [
            {"field": "scheduled_start", "message": format_timestamp(link.scheduled_start)}
            if link.scheduled_start
            else None,
            {"field": "scheduled_end", "message": format_timestamp(link.scheduled_end)}
            if link.scheduled_end
            else None,
        ]
        raise LinkNotInSchedule(
            "This call link opens later." if before else "This call link's schedule has ended.",
            details=[d for d in details if d is not None],
        )


async def consume_use(db: AsyncSession, link_id: str, now: datetime) -> bool:
    """Take one use atomically: with `max_uses: 1` and a crowd racing, exactly one wins."""
    result = await db.execute(
        update(Link)
        .where(
            Link.id == link_id,
            Link.is_active.is_(True),
            or_(Link.max_uses.is_(None), Link.use_count < Link.max_uses),
            or_(Link.expires_at.is_(None), Link.expires_at > now),
        )
        .values(use_count=Link.use_count + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def code_and_limit(db: AsyncSession, link_id: str) -> tuple[str, bool]:
    """The link's short code, and whether its uses are limited (its public view then
    changes as they run out)."""
    row = (await db.execute(select(Link.short_code, Link.max_uses).where(Link.id == link_id))).one()
    return row.short_code, row.max_uses is not None


async def give_back_use(db: AsyncSession, link_id: str) -> str | None:
    """A call that never happened (declined, host no-show) does not count against the link.
    The link's short code (its public view may have changed)."""
    await db.execute(
        update(Link)
        .where(Link.id == link_id, Link.use_count > 0)
        .values(use_count=Link.use_count - 1)
        .execution_options(synchronize_session=False)
    )
    return await db.scalar(select(Link.short_code).where(Link.id == link_id))


async def deactivate_link(db: AsyncSession, clock: Clock, host: User, link_id: str) -> str:
    """Deactivate the host's link; its short code."""
    link = await db.get(Link, link_id) if looks_like_id(link_id) else None
    if link is None:
        raise NotFound("No call link with this id.")
    if link.host_id != host.id:
        raise Forbidden("You do not own this call link.")
    # Soft delete: new sessions stop; sessions already running keep going and are billed.
    if link.is_active:
        link.is_active = False
        link.deleted_at = clock.now()
    return link.short_code


async def deactivate_all_links(db: AsyncSession, clock: Clock, host_id: str) -> None:
    """Deactivate every link of the host (its account is closing), as `deactivate_link` does."""
    await db.execute(
        update(Link)
        .where(Link.host_id == host_id, Link.is_active.is_(True))
        .values(is_active=False, deleted_at=clock.now())
        .execution_options(synchronize_session=False)
    )


async def names_of(db: AsyncSession, link_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Each link's short code and label, by id, in one query (a host's call history)."""
    ids = set(link_ids)
    if not ids:
        return {}
    rows = await db.execute(select(Link.id, Link.short_code, Link.label).where(Link.id.in_(ids)))
    return {row.id: (row.short_code, row.label) for row in rows}
