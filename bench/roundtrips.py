"""`python -m bench.roundtrips`: database round trips per request on each hot path.

Runs the app in process (httpx's ASGI transport) against the bench's PostgreSQL database and
counts, per request, what goes over the wire: every statement (SQLAlchemy's
`before_cursor_execute`; asyncpg's query loggers for the fast paths' statements run on its
own connection, `DriverStatement`), every pool checkout (a round trip of its own while
`pool_pre_ping` is on), and every COMMIT and ROLLBACK (asyncpg also sends a BEGIN per
transaction, counted with the commit/rollback that closes it: ×2; an autocommit connection
sends neither). Statements the fast path or a cache answers count zero.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.http import LINK_BODY, START_BODY
from bench.stack import DSN, PASSWORD, Stack, recreate_database, run


async def _count(folder: Path) -> list[str]:
    os.environ.update({k: v for k, v in Stack(folder).env.items() if k.startswith("VIDIVO_")})
    from vidivo.app import create_app

    app = create_app()
    engine: AsyncEngine = app.state.provided[AsyncEngine]
    counts: Counter[str] = Counter()
    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", lambda *a: counts.update(["statements"]))

    def ended(connection: Any) -> None:  # an autocommit connection sent no BEGIN nor COMMIT
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            counts.update(["transactions"])

    event.listen(sync, "commit", ended)
    event.listen(sync, "rollback", ended)
    pre_ping = bool(getattr(engine.pool, "_pre_ping", False))

    def driver_statement(query: Any) -> None:  # SQLAlchemy's own BEGIN/COMMIT: counted above
        if not query.query.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            counts.update(["statements"])

    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        counts.update(["checkouts"])
        record.driver_connection.add_query_logger(driver_statement)

    def checkin(_dbapi: Any, record: Any) -> None:
        if record.driver_connection is not None:
            record.driver_connection.remove_query_logger(driver_statement)

    event.listen(sync.pool, "checkout", checkout)
    event.listen(sync.pool, "checkin", checkin)

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = (
                await client.post(
                    "/v1/auth/token", json={"email": "bench@example.com", "password": PASSWORD}
                )
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            code = (await client.post("/v1/links", headers=auth, content=LINK_BODY)).json()["link"][
                "short_code"
            ]
            await client.get(f"/v1/links/{code}")  # warm the public cache
            paths: list[tuple[str, str, str, dict[str, str], str | None]] = [
                ("public view (cached)", "GET", f"/v1/links/{code}", {}, None),
                ("POST /v1/links", "POST", "/v1/links", auth, LINK_BODY),
                ("GET /v1/links?limit=20", "GET", "/v1/links?limit=20", auth, None),
                (
                    "POST /v1/links/{code}/sessions",
                    "POST",
                    f"/v1/links/{code}/sessions",
                    {"Content-Type": "application/json"},
                    START_BODY,
                ),
            ]
            lines = [
                "| path | statements | transactions | pool checkouts | round trips |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, method, url, headers, body in paths:
                await client.request(method, url, headers=headers, content=body)  # warm
                await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon, not at once
                counts.clear()
                response = await client.request(method, url, headers=headers, content=body)
                response.raise_for_status()
                await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon, not at once
                trips = (
                    counts["statements"]
                    + 2 * counts["transactions"]
                    + (counts["checkouts"] if pre_ping else 0)
                )
                lines.append(
                    f"| {name} | {counts['statements']} | {counts['transactions']} "
                    f"| {counts['checkouts']}{' (pre-pinged)' if pre_ping else ''} | {trips} |"
                )
    return lines


def measure() -> list[str]:
    """The round-trip table, on a fresh bench database."""
    run(recreate_database())
    with tempfile.TemporaryDirectory() as scratch:
        stack = Stack(Path(scratch))
        stack.cli("migrate")
        stack.cli("hosts", "create", "--email", "bench@example.com", "--password", PASSWORD,
                  "--display-name", "Bench Host", "--verified", "--connected")  # fmt: skip
        return asyncio.run(_count(Path(scratch)))


def main() -> None:
    lines = measure()
    print(f"Database round trips per request ({DSN.rsplit('/', 1)[-1]}):", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
