"""Engine, session factory, declarative base and the column types every domain shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from ulid import ULID

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """A ULID: 26 characters, sortable by creation time."""
    return str(ULID())


_ULID_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def looks_like_id(text: str) -> bool:
    """A ULID as we issue them: 26 Crockford base32 characters (lookups of anything else
    cannot match and must not reach the database)."""
    return len(text) == 26 and set(text) <= _ULID_CHARS


def async_database_url(url: str) -> str:
    """Accept plain `sqlite:///…` and `postgresql://…` URLs; the async driver is ours to pick."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; the busy timeout queues writers
    # instead of failing them with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    url = async_database_url(database_url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it cost a round trip on every checkout. A connection PostgreSQL dropped
    # (a restart) fails the one statement that uses it; SQLAlchemy then marks the whole pool
    # stale, so that request answers 503 and the next ones connect afresh. All 30 connections
    # (at most 30, as before) are kept once opened: with overflow connections, a busy
    # instance opened and closed one (a new PostgreSQL backend, asyncpg's SSL probe) every
    # few dozen requests, about a tenth of its CPU. A 31st concurrent request waits for one.
    return create_async_engine(url, pool_size=30, max_overflow=0, pool_pre_ping=False)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def unit_of_work(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def utc_now_seconds(moment: datetime) -> datetime:
    """Server timestamps are kept to whole seconds, as the API shows them."""
    return moment.astimezone(UTC).replace(microsecond=0)
