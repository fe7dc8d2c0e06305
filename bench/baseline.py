"""The bare stack: a minimal ASGI app on the same server (uvicorn) and database doing one
indexed SELECT of the row a public link view needs. Vidivo's figures are read against it."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import orjson
import uvicorn

QUERY = (
    "SELECT l.short_code, l.rate_cents, l.window_size_minutes, l.is_active, "
    "l.scheduled_start, l.scheduled_end, u.display_name "
    "FROM links l JOIN users u ON u.id = l.host_id WHERE l.short_code = $1"
)
state: dict[str, Any] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                state["pool"] = await asyncpg.create_pool(os.environ["BENCH_DSN"], max_size=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await state["pool"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    code = scope["path"].rsplit("/", 1)[-1]
    row = await state["pool"].fetchrow(QUERY, code)
    if row is None:
        status, body = 404, orjson.dumps({"error": {"code": "not_found"}})
    else:
        status = 200
        body = orjson.dumps(
            {
                "link": {
                    "short_code": row["short_code"],
                    "rate_per_minute": f"{row['rate_cents'] // 100}.{row['rate_cents'] % 100:02d}",
                    "window_size_minutes": row["window_size_minutes"],
                    "is_active": row["is_active"],
                    "host": {"display_name": row["display_name"]},
                }
            }
        )
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
