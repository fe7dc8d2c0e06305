"""Engine, session factory, declarative base and the column types every domain shares."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ReturnsRows
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import greenlet_spawn
from ulid import ULID

from vidivo.core.sqlite_lane import SQLITE_PRAGMAS, close_sqlite_lanes, on_a_file, sqlite_lane

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
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
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


class DriverStatement:
    """One Core statement, compiled once and run autocommitted on the driver's own
    connection, past SQLAlchemy's execution machinery: for the one-statement hot paths, where
    that machinery (a connection, its execution options, a context, bind and result
    processing: ~0.1 ms a request on this kind of machine, bench/HISTORY.md) is a large share
    of the request. The values go through the columns' own bind processing, as SQLAlchemy
    would send them, and the rows through their result processing.

    On PostgreSQL the connection is asyncpg's, from the engine's pool and back to it; one
    whose failure may have ended it (dropped, shut down, cancelled mid-query) is discarded
    from it, as SQLAlchemy discards a connection it finds broken. On an SQLite file it is
    the process's lane to the file for writes, or the one for reads (`sqlite_lane`)."""

    def __init__(self, engine: AsyncEngine, statement: ClauseElement) -> None:
        dialect = engine.dialect
        if not runs_driver_statements(engine):
            raise ValueError(f"a driver statement runs on asyncpg or an SQLite file: {engine.url}")
        self._on_sqlite = dialect.name == "sqlite"
        self._writes = statement.is_dml
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
            raise ValueError("a driver statement takes plain positional values")
        binds = compiled.binds
        self._engine = engine
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup)
        # A value the statement carries itself (a literal compared to), for a name not given;
        # a parameter the caller must give is a KeyError when it is missing, never a NULL.
        self._fixed = {
            name: binds[name].effective_value for name in self._names if not binds[name].required
        }
        self._processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self._names
        )
        # What it answers: its columns (a SELECT's, or what an INSERT returns), each read
        # through its type's result processing, into rows named as the ORM's are (a name twice,
        # as in a join, is read by place).
        columns = list(statement.exported_columns) if isinstance(statement, ReturnsRows) else []
        keys = [column.key for column in columns]
        self._row: Any = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        self._readers: list[tuple[int, Callable[[Any], Any]]] = []
        for place, column in enumerate(columns):
            read = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if read is not None:
                self._readers.append((place, read))

    def _values(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self._names, self._processors, strict=True):
            value = params[name] if name in params else self._fixed[name]
            values.append(value if process is None or value is None else process(value))
        return values

    async def scalar(self, params: Mapping[str, Any]) -> Any:
        """The first column of the first row (None without one)."""
        rows = await self.all(params)
        return rows[0][0] if rows else None

    async def all(self, params: Mapping[str, Any]) -> list[Any]:
        """Every row, its columns by name (`row.id`) or by place."""
        values = self._values(params)
        records = await (self._fetch_sqlite if self._on_sqlite else self._fetch_asyncpg)(values)
        rows = []
        for record in records:
            row = list(record)
            for place, read in self._readers:
                if row[place] is not None:
                    row[place] = read(row[place])
            rows.append(self._row._make(row))
        return rows

    async def _fetch_sqlite(self, values: list[Any]) -> list[Any]:
        try:
            return await sqlite_lane(self._engine, writes=self._writes).fetch(self.sql, values)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(self.sql, values, error) from error

    async def _fetch_asyncpg(self, values: list[Any]) -> list[Any]:
        pooled = await self._engine.raw_connection()
        try:
            records = await pooled.driver_connection.fetch(self.sql, *values)  # type: ignore[union-attr]
        except asyncpg.IntegrityConstraintViolationError as error:
            # A constraint refused the row (the connection stays good): raised as SQLAlchemy
            # raises it, so a caller handles it as on any other path.
            raise IntegrityError(self.sql, values, error) from error
        except BaseException as error:
            if _connection_broken(error, pooled.driver_connection):
                await greenlet_spawn(pooled.invalidate, error)
            raise
        finally:
            await greenlet_spawn(pooled.close)
        return cast(list[Any], records)


def runs_driver_statements(engine: AsyncEngine) -> bool:
    """Whether the engine's database takes `DriverStatement`s: PostgreSQL on asyncpg, or
    an SQLite file (not an in-memory database, which only the pool's connection sees)."""
    return engine.dialect.driver == "asyncpg" or on_a_file(engine)


async def dispose(engine: AsyncEngine) -> None:
    """The engine's connections closed, its SQLite lane's too: at shutdown."""
    await close_sqlite_lanes(engine)
    await engine.dispose()


# PostgreSQL's own refusals that end the connection: shut down by an operator or a crash
# (57xxx: a statement cancelled on a timeout is one too, and costs only a reconnect), or
# the connection failing (08xxx).
_CONNECTION_ENDING = (
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresConnectionError,
)


def _connection_broken(error: BaseException, connection: Any) -> bool:
    """Whether a connection that raised `error` must leave the pool: anything but a
    statement PostgreSQL refused on a connection that stays open (a constraint, a type)."""
    return (
        not isinstance(error, asyncpg.PostgresError)
        or isinstance(error, _CONNECTION_ENDING)
        or connection.is_closed()
    )
