"""`DriverStatement`: a hot path's one statement run on the driver's own connection, with
the columns' bind and result processing SQLAlchemy would apply; on PostgreSQL a connection
it dropped never handed out again, on SQLite the process's one lane to the file. On a
PostgreSQL database of the test's own and an SQLite file, whichever suite runs it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import _recreate_postgres_database, beside
from vidivo.core.db import (
    DriverStatement,
    UTCDateTime,
    async_database_url,
    create_engine,
    dispose,
    runs_driver_statements,
)
from vidivo.core.sqlite_lane import sqlite_lane

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("at", UTCDateTime(timezone=True)),
)


@pytest.fixture
def database_of_its_own() -> Iterator[str]:
    suite = os.environ.get(
        "VIDIVO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/vidivo_test"
    )
    url = beside(suite, f"driver_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    _recreate_postgres_database(url)
    yield url


@pytest.fixture
async def postgres_engine(database_of_its_own: str) -> AsyncIterator[AsyncEngine]:
    # One connection: a broken one handed out again would fail the next statement too.
    engine = create_async_engine(
        async_database_url(database_of_its_own), pool_size=1, max_overflow=0
    )
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'driver.sqlite3'}")  # the app's settings
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await dispose(engine)


@pytest.fixture(params=["postgres", "sqlite"])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    return cast(AsyncEngine, request.getfixturevalue(f"{request.param}_engine"))


async def test_values_are_sent_as_sqlalchemy_would_send_them(engine: AsyncEngine):
    add = DriverStatement(
        engine,
        insert(notes)
        .values(id=bindparam("id"), kind="fixed", at=bindparam("at"))
        .returning(notes.c.at),
    )
    paris = timezone(timedelta(hours=1))
    stored = await add.scalar({"id": 1, "at": datetime(2026, 3, 21, 10, 30, tzinfo=paris)})
    assert stored == datetime(2026, 3, 21, 9, 30, tzinfo=UTC)  # kept in UTC, as the ORM keeps it
    assert await add.scalar({"id": 2, "at": None}) is None
    async with engine.connect() as connection:
        rows = (await connection.execute(select(notes).order_by(notes.c.id))).all()
    assert [(row.kind, row.at) for row in rows] == [
        ("fixed", datetime(2026, 3, 21, 9, 30, tzinfo=UTC)),
        ("fixed", None),
    ]
    with pytest.raises(ValueError, match="naive"):  # the column's own refusal, as on the ORM
        await add.scalar({"id": 3, "at": datetime(2026, 3, 21, 10, 30)})


async def test_a_connection_postgresql_dropped_is_not_handed_out_again(
    postgres_engine: AsyncEngine, database_of_its_own: str
):
    engine = postgres_engine
    count = DriverStatement(engine, select(notes.c.id).where(notes.c.kind == bindparam("kind")))
    assert await count.scalar({"kind": "any"}) is None  # the pool's one connection is open
    admin = await asyncpg.connect(database_of_its_own.replace("postgresql://", "postgres://"))
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert dropped == 1
    # How asyncpg says so depends on when it read PostgreSQL's notice: an admin shutdown,
    # a closed connection, or a protocol in a state it cannot leave.
    with pytest.raises(Exception):  # any of them: what matters comes next
        await count.scalar({"kind": "any"})
    assert await count.scalar({"kind": "any"}) is None  # a fresh connection
    # A statement PostgreSQL refuses leaves the connection in the pool, in working order.
    refused = DriverStatement(
        engine, insert(notes).values(id=1, kind="x" * 11).returning(notes.c.id)
    )
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await refused.scalar({})
    assert await count.scalar({"kind": "any"}) is None


async def test_a_constraint_refusing_the_row_is_sqlalchemys_integrity_error(engine: AsyncEngine):
    """Callers catch the IntegrityError they catch on every other path (the engine plans
    again on it); the connection stays in working order."""
    insert_note = DriverStatement(
        engine, insert(notes).values(id=7, kind="x").returning(notes.c.id)
    )
    count = DriverStatement(engine, select(func.count()).select_from(notes))
    assert await insert_note.scalar({}) == 7
    with pytest.raises(IntegrityError) as refused:
        await insert_note.scalar({})
    assert isinstance(refused.value.orig, asyncpg.UniqueViolationError | sqlite3.IntegrityError)
    assert await count.scalar({}) == 1


async def test_sqlite_writes_queue_in_the_order_they_came(sqlite_engine: AsyncEngine):
    """Two hundred concurrent writes: every one lands, none is refused as "database is
    locked", in the order they were sent (one connection, one thread)."""
    add = DriverStatement(
        sqlite_engine,
        insert(notes).values(kind=bindparam("kind"), at=None).returning(notes.c.id),
    )
    ids = await asyncio.gather(*(add.scalar({"kind": f"n{i}"}) for i in range(200)))
    async with sqlite_engine.connect() as connection:
        kinds = (await connection.execute(select(notes.c.kind).order_by(notes.c.id))).scalars()
        assert list(kinds) == [f"n{i}" for i in range(200)]
    assert ids == sorted(ids)


async def test_a_sqlite_write_waits_for_the_pools_transaction_and_holds_up_no_read(
    sqlite_engine: AsyncEngine,
):
    add = DriverStatement(
        sqlite_engine, insert(notes).values(id=2, kind="lane").returning(notes.c.id)
    )
    count = DriverStatement(sqlite_engine, select(func.count()).select_from(notes))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(tick())
    async with sqlite_engine.begin() as transaction:  # holds SQLite's write lock meanwhile
        await transaction.execute(insert(notes).values(id=1, kind="pool"))
        lane_write = asyncio.create_task(add.scalar({}))
        await asyncio.sleep(0.3)
        assert not lane_write.done()
        # Reads have their own lane: none waits behind the write (WAL: the last commit).
        assert await asyncio.wait_for(count.scalar({}), timeout=0.5) == 0
        counted = ticks
    assert await lane_write == 2  # written once the pool's transaction committed
    ticking.cancel()
    assert counted >= 10  # the event loop went on while the lane waited
    async with sqlite_engine.connect() as connection:
        kinds = (await connection.execute(select(notes.c.kind).order_by(notes.c.id))).scalars()
        assert list(kinds) == ["pool", "lane"]


async def test_an_in_memory_sqlite_database_takes_no_driver_statements():
    """Another connection would see an empty database of its own: the pool path stays."""
    memory = create_engine("sqlite://")
    try:
        assert not runs_driver_statements(memory)
        with pytest.raises(ValueError, match="asyncpg or an SQLite file"):
            DriverStatement(memory, select(notes.c.id))
    finally:
        await dispose(memory)


async def test_disposing_the_engine_closes_its_sqlite_lane_and_a_later_statement_opens_one(
    sqlite_engine: AsyncEngine,
):
    count = DriverStatement(sqlite_engine, select(func.count()).select_from(notes))
    assert await count.scalar({}) == 0
    first = sqlite_lane(sqlite_engine, writes=False)
    await dispose(sqlite_engine)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        first.connection.execute("SELECT 1")
    assert await count.scalar({}) == 0  # as SQLAlchemy's pool after dispose: opened again
    assert sqlite_lane(sqlite_engine, writes=False) is not first
