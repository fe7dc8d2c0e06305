"""The embedded default's own connections for the one-statement hot paths (`DriverStatement`
on SQLite): a lane for writes and one for reads, each one connection to the file on one
thread, its statements in the order they came.

Through SQLAlchemy's pool, a statement on SQLite costs a hop to the connection's thread for
each step (a cursor, the statement, the rows, the isolation level set and reset, the pool's
rollback on return), and concurrent writes from the pool's connections wait for SQLite's
one write lock in its busy handler, which sleeps in growing steps (up to 100 ms) between
tries. Here a statement is one hop, committed as it ends, and writes queue in order instead
of sleeping: what one process can do with SQLite's single writer (bench/HISTORY.md). Reads
have a lane of their own: in WAL mode they never wait for the write lock, so they never
queue behind a write that does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

# Every connection to the file, the pool's (`db._sqlite_pragmas`) and the lanes': WAL lets
# readers run beside the single writer; the busy timeout queues writers instead of failing
# them with "database is locked".
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


class SqliteLane:
    def __init__(self, path: str) -> None:
        # Autocommit: each statement is its own transaction, as the hot paths ask. Opened
        # here and used only from the lane's thread afterwards.
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            self.connection.execute(pragma)
        # Threads of an executor end with the interpreter, even if the lane is never closed.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidivo-sqlite")

    def _run(self, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, values).fetchall()

    async def fetch(self, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
        """Every row the statement answers, once it has run and committed."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, sql, values)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.connection.close)
        self._thread.shutdown(wait=False)


# Each engine's lanes, for writes (True) and reads (False): a process has one engine, a
# test may build several.
_LANES: weakref.WeakKeyDictionary[Engine, dict[bool, SqliteLane]] = weakref.WeakKeyDictionary()


def sqlite_lane(engine: AsyncEngine, *, writes: bool) -> SqliteLane:
    """The engine's lane for writes or for reads, opened on first use."""
    lanes = _LANES.get(engine.sync_engine)  # on every statement: no new weak reference
    if lanes is None:
        lanes = _LANES[engine.sync_engine] = {}
    lane = lanes.get(writes)
    if lane is None:
        if not on_a_file(engine):
            raise ValueError("an SQLite lane needs a database file")
        lane = lanes[writes] = SqliteLane(str(engine.url.database))
    return lane


def on_a_file(engine: AsyncEngine) -> bool:
    """Whether the engine's SQLite database is a file another connection can open (an
    in-memory database is the pool connection's own)."""
    path = engine.url.database
    return engine.dialect.name == "sqlite" and path not in (None, "", ":memory:")


async def close_sqlite_lanes(engine: AsyncEngine) -> None:
    """Closes the engine's lanes, if it has any (with the engine: `db.dispose`)."""
    for lane in _LANES.pop(engine.sync_engine, {}).values():
        await lane.close()
