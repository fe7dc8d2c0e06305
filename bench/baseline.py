"""The bare stack: a minimal raw ASGI app on the same server (uvicorn) and the same database,
doing the least each Vidivo path must do. Vidivo's figures are read against it.

- `GET /v1/links/{code}`: one indexed SELECT of the row a public link view needs.
- `POST /bare/insert?host=…`: one INSERT of a link row (what creating a link or starting a
  session must at least write), committed.
- `GET /bare/keyset?host=…`: one 20-row keyset SELECT of a host's links, newest first (the
  first page of a listing; 21 rows read, to know whether there is more).
- `POST /bare/start?code=…`: the floor of a crash-safe session start: the statements one
  Vidivo start sends, in the same transactions and on as many connection checkouts, in the
  same order (`START_STEPS`), on a narrow scratch row instead of the real tables and with no
  logic between them. Not a path of its own: what the start's writes cost the bare stack.
- `POST /bare/start-condensed?code=…`: the floor of the fewest round trips a crash-safe start
  could make (`CONDENSED_START`), in four steps before the answer: the link's use, the call
  and its first window written together (durable before any provider call); the provider's
  customer created with the card; the first hold placed, saving the card for later holds;
  the hold's outcome and the host's email written together. After the answer, the email
  marked sent. On PostgreSQL each step is one statement on a checkout of its own
  (data-modifying CTEs); on SQLite one transaction run in one hop on a connection and a
  thread of its own.

On PostgreSQL (`BENCH_DSN=postgresql://…`) it uses an asyncpg pool of 10; on SQLite
(`BENCH_DSN=sqlite:///…`, the same file Vidivo serves) one aiosqlite connection in WAL mode
with autocommit, which is what one process can do with SQLite's single writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson
import uvicorn
from ulid import ULID

LOOKUP = (
    "SELECT l.short_code, l.rate_cents, l.window_size_minutes, l.is_active, "
    "l.scheduled_start, l.scheduled_end, u.display_name "
    "FROM links l JOIN users u ON u.id = l.host_id WHERE l.short_code = $1"
)
INSERT = (
    "INSERT INTO links (id, short_code, host_id, rate_cents, window_size_minutes, use_count, "
    "is_active, created_at) VALUES ($1, $2, $3, 250, 10, 0, true, $4)"
)
KEYSET = (
    "SELECT id, short_code, rate_cents, window_size_minutes, expires_at, max_uses, use_count, "
    "label, is_active, created_at FROM links WHERE host_id = $1 ORDER BY id DESC LIMIT 21"
)
SCRATCH = (
    "CREATE TABLE IF NOT EXISTS bare_start_rows "
    "(id VARCHAR(26) PRIMARY KEY, step INTEGER NOT NULL, n INTEGER NOT NULL,"
    " at TIMESTAMP WITH TIME ZONE)"
)
# One statement of a start on the bare stack: the call's row read (S), a row written (I),
# the call's row changed (U), or the link's use taken on its shared row (L).
START_SQL = {
    "S": "SELECT id, step, n, at FROM bare_start_rows WHERE id = $1",
    "I": "INSERT INTO bare_start_rows (id, step, n, at) VALUES ($1, $2, 0, $3)",
    "U": "UPDATE bare_start_rows SET n = n + 1, at = $2 WHERE id = $1",
    "L": "UPDATE links SET use_count = use_count + 1 WHERE short_code = $1",
}
# A Vidivo start as it reaches the database, step by step (each on a connection of its own):
# in a transaction or not, and its statements. Seen with SQLAlchemy's and asyncpg's
# statement events on one start against PostgreSQL, at the commit that added this.
START_STEPS: list[tuple[bool, str]] = [
    (False, "S"),  # the short code looked up (the guard against guessing codes)
    (True, "SSII"),  # the link and the host's payouts read; the call and its first window
    (True, "II"),  # the provider's customer and its idempotency record
    (True, "SSII"),  # the card attached to it, and its record
    (True, "U"),  # the customer and card recorded on the call
    (False, "S"),  # the first hold: the engine's plan read...
    (False, "U"),  # ...and saved
    (False, "I"),  # the provider's hold and its record
    (False, "S"),  # the plan read again...
    (False, "U"),  # ...and the hold's outcome saved
    (True, "SLUI"),  # settled: the link's use taken, the call waits, the host's email queued
]
# After the answer: the host's email sent and marked so.
AFTER_START: tuple[bool, str] = (True, "SU")
# A start condensed to the fewest round trips a crash-safe start could make. The call is
# written before any provider call, so a crash never leaves a hold nobody knows of. Stripe
# needs two calls (a customer created with the card; a hold that saves the card for the
# later, off-session holds), each one row of the simulated provider's. Then the outcome.
# Each job is one statement on PostgreSQL (its CTE in CONDENSED_CTE) and one transaction
# on SQLite (its statements in START_SQL, in order).
CONDENSED_START = ["LII", "I", "I", "UI"]
CONDENSED_AFTER = "U"
CONDENSED_CTE = {
    "LII": (
        "WITH used AS (UPDATE links SET use_count = use_count + 1 WHERE short_code = $1"
        " RETURNING 1), called AS (INSERT INTO bare_start_rows (id, step, n, at)"
        " SELECT $2, $3, 0, $4 FROM used RETURNING 1)"
        " INSERT INTO bare_start_rows (id, step, n, at) SELECT $5, $6, 0, $7 FROM called"
    ),
    "UI": (
        "WITH waits AS (UPDATE bare_start_rows SET n = n + 1, at = $2 WHERE id = $1"
        " RETURNING 1) INSERT INTO bare_start_rows (id, step, n, at)"
        " SELECT $3, $4, 0, $5 FROM waits"
    ),
}
state: dict[str, Any] = {}


class Postgres:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, max_size=10)

    async def close(self) -> None:
        await self.pool.close()

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.pool.fetch(sql, *args)]

    async def execute(self, sql: str, *args: Any) -> None:
        await self.pool.execute(sql, *args)

    async def step(self, in_transaction: bool, kinds: str, start: BareStart) -> None:
        async with self.pool.acquire() as connection:
            # A transaction is rolled back if a statement fails.
            scope = connection.transaction() if in_transaction else contextlib.nullcontext()
            async with scope:
                for kind in kinds:
                    await connection.execute(START_SQL[kind], *start.args(kind, self.now()))

    async def job(self, kinds: str, start: BareStart) -> None:
        now = self.now()
        args = [value for kind in kinds for value in start.args(kind, now)]
        await self.pool.execute(CONDENSED_CTE.get(kinds) or START_SQL[kinds], *args)

    def now(self) -> Any:
        return datetime.now(UTC)


# Both of the bare app's SQLite connections: WAL, and writers queued rather than refused.
BARE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=10000")


class Sqlite:
    def __init__(self, path: str) -> None:
        self.path = path

    async def open(self) -> None:
        import aiosqlite

        self.db = await aiosqlite.connect(self.path, isolation_level=None)
        self.db.row_factory = aiosqlite.Row
        for pragma in BARE_PRAGMAS:
            await self.db.execute(pragma)
        self.lock = asyncio.Lock()
        # The condensed start's connection: a job's statements run in one hop on its thread.
        self.jobs = ThreadPoolExecutor(max_workers=1)
        self.job_db = await self._on_job_thread(self._open_job_db)

    def _open_job_db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in BARE_PRAGMAS:
            db.execute(pragma)
        return db

    async def _on_job_thread(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.jobs, work, *args)

    async def close(self) -> None:
        await self.db.close()
        await self._on_job_thread(self.job_db.close)
        self.jobs.shutdown()

    def _run_job(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        # One statement is its own transaction (autocommit); several share one.
        together = len(statements) > 1
        if together:
            self.job_db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self.job_db.execute(sql, args)
        except BaseException:
            if together:
                self.job_db.execute("ROLLBACK")
            raise
        if together:
            self.job_db.execute("COMMIT")

    async def job(self, kinds: str, start: BareStart) -> None:
        now = self.now()
        statements = [(self._sql(START_SQL[kind]), start.args(kind, now)) for kind in kinds]
        # Never at once with the other connection's writes: SQLite's busy handler is no
        # queue, and one connection hammering the lock can starve the other past its timeout.
        async with self.lock:
            await self._on_job_thread(self._run_job, statements)

    @staticmethod
    def _sql(sql: str) -> str:
        for n in range(9, 0, -1):
            sql = sql.replace(f"${n}", "?")
        return sql.replace("true", "1")

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        async with self.db.execute(self._sql(sql), args) as cursor:
            row = await cursor.fetchone()
        return dict(row) if row is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.db.execute(self._sql(sql), args) as cursor:
            return [dict(r) for r in await cursor.fetchall()]

    async def execute(self, sql: str, *args: Any) -> None:
        # Run to its end in one hop: a SELECT left with rows unread keeps its read snapshot
        # until the cursor is collected, and the WAL cannot be checkpointed past it meanwhile.
        await self.db.execute_fetchall(self._sql(sql), args)

    async def step(self, in_transaction: bool, kinds: str, start: BareStart) -> None:
        # One connection: a transaction has it to itself until it ends. IMMEDIATE: the write
        # lock is waited for at BEGIN, so a transaction that reads and then writes is never
        # refused for a write committed by another connection (Vidivo's) in between.
        async with self.lock:
            if in_transaction:
                await self.db.execute("BEGIN IMMEDIATE")
            try:
                for kind in kinds:
                    await self.execute(START_SQL[kind], *start.args(kind, self.now()))
            except BaseException:
                if in_transaction:
                    await self.db.execute("ROLLBACK")
                raise
            if in_transaction:
                await self.db.execute("COMMIT")

    def now(self) -> Any:
        return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _database(url: str) -> Postgres | Sqlite:
    if url.startswith("sqlite"):
        return Sqlite(url.split(":///", 1)[1])
    return Postgres(url)


class BareStart:
    """One start's statements' values: the call's row is the first one written."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.call = str(ULID())
        self.call_written = False

    def args(self, kind: str, now: Any) -> tuple[Any, ...]:
        if kind == "S":
            return (self.call,)
        if kind == "I":
            row = str(ULID()) if self.call_written else self.call
            self.call_written = True
            return (row, 1, now)
        if kind == "U":
            return (self.call, now)
        return (self.code,)


async def _start(db: Postgres | Sqlite, code: str) -> str:
    start = BareStart(code)
    for in_transaction, kinds in START_STEPS:
        await db.step(in_transaction, kinds, start)
    # The host's email goes after the answer, as Vidivo sends it.
    task = asyncio.create_task(db.step(*AFTER_START, start))
    state.setdefault("after", set()).add(task)
    task.add_done_callback(state["after"].discard)
    return start.call


async def _condensed_start(db: Postgres | Sqlite, code: str) -> str:
    start = BareStart(code)
    for kinds in CONDENSED_START:
        await db.job(kinds, start)
    task = asyncio.create_task(db.job(CONDENSED_AFTER, start))
    state.setdefault("after", set()).add(task)
    task.add_done_callback(state["after"].discard)
    return start.call


def _cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


async def _answer(scope: dict[str, Any]) -> tuple[int, bytes]:
    db: Postgres | Sqlite = state["db"]
    path: str = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/bare/insert":
        link_id, code = str(ULID()), secrets.token_hex(5)
        await db.execute(INSERT, link_id, code, query["host"], db.now())
        return 201, orjson.dumps({"link": {"id": link_id, "short_code": code}})
    if path == "/bare/start":
        call = await _start(db, query["code"])
        return 201, orjson.dumps({"session": {"id": call}})
    if path == "/bare/start-condensed":
        call = await _condensed_start(db, query["code"])
        return 201, orjson.dumps({"session": {"id": call}})
    if path == "/bare/keyset":
        rows = await db.fetch(KEYSET, query["host"])
        links = [
            {**r, "rate_per_minute": _cents(r.pop("rate_cents")), "is_active": bool(r["is_active"])}
            for r in rows[:20]
        ]
        return 200, orjson.dumps(
            {"links": links, "pagination": {"has_more": len(rows) > 20}}, default=str
        )
    row = await db.fetchrow(LOOKUP, path.rsplit("/", 1)[-1])
    if row is None:
        return 404, orjson.dumps({"error": {"code": "not_found"}})
    return 200, orjson.dumps(
        {
            "link": {
                "short_code": row["short_code"],
                "rate_per_minute": _cents(row["rate_cents"]),
                "window_size_minutes": row["window_size_minutes"],
                "is_active": bool(row["is_active"]),
                "host": {"display_name": row["display_name"]},
            }
        }
    )


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                state["db"] = _database(os.environ["BENCH_DSN"])
                await state["db"].open()
                await state["db"].execute(SCRATCH)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await state["db"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] == "POST":  # drain the body, as any server must
        while (await receive()).get("more_body"):
            pass
    status, body = await _answer(scope)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning")
