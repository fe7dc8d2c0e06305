"""`DriverStatement`: a hot path's one statement run on asyncpg's own connection, with the
columns' bind processing SQLAlchemy would apply, and a connection PostgreSQL dropped never
handed out again. On a PostgreSQL database of the test's own, whichever suite runs it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import _recreate_postgres_database, beside
from vidivo.core.db import DriverStatement, UTCDateTime, async_database_url

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
async def engine(database_of_its_own: str) -> AsyncIterator[AsyncEngine]:
    # One connection: a broken one handed out again would fail the next statement too.
    engine = create_async_engine(
        async_database_url(database_of_its_own), pool_size=1, max_overflow=0
    )
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


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
    engine: AsyncEngine, database_of_its_own: str
):
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
    assert isinstance(refused.value.orig, asyncpg.UniqueViolationError)
    assert await count.scalar({}) == 1
