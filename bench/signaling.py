"""Signaling under load: thousands of WebSocket clients on one instance (memory per
connection), and relay latency between two peers on the same and on different instances
(Redis pub/sub between them)."""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time

import httpx
import websockets

from bench.stack import PASSWORD, REDIS_URL, Stack, rss_kib


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _start_calls(base: str, count: int) -> tuple[str, list[tuple[str, str]]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        token = (
            await http.post(
                "/v1/auth/token", json={"email": "signal@example.com", "password": PASSWORD}
            )
        ).json()["access_token"]
        link = (
            await http.post(
                "/v1/links",
                headers={"Authorization": f"Bearer {token}"},
                json={"rate_per_minute": "1.00", "window_size_minutes": 10},
            )
        ).json()["link"]
        gate = asyncio.Semaphore(16)
        body = {
            "guest_name": "G",
            "guest_email": "g@example.com",
            "payment_method_id": "pm_card_visa",
        }

        async def one() -> tuple[str, str]:
            async with gate:
                started = (
                    await http.post(f"/v1/links/{link['short_code']}/sessions", json=body)
                ).json()
                return started["session"]["id"], started["guest_token"]

        return token, list(await asyncio.gather(*(one() for _ in range(count))))


def _ws(base: str, session_id: str, token: str) -> str:
    return f"{base.replace('http', 'ws')}/v1/sessions/{session_id}/signal?token={token}"


async def _relay_latency(host_url: str, guest_url: str, messages: int) -> list[float]:
    async with websockets.connect(host_url) as host, websockets.connect(guest_url) as guest:
        await asyncio.wait_for(host.recv(), timeout=30)  # welcome
        await asyncio.wait_for(guest.recv(), timeout=30)
        latencies = []
        for n in range(messages):
            # 40 messages a second: under the per-socket budget (50/s), as ICE trickles.
            await asyncio.sleep(0.025)
            sent = time.perf_counter()
            await guest.send(json.dumps({"type": "ice", "candidate": {"n": n}}))
            while True:
                event = json.loads(await asyncio.wait_for(host.recv(), timeout=10))
                if event["type"] == "ice" and event["candidate"]["n"] == n:
                    break
            latencies.append((time.perf_counter() - sent) * 1000)
        return latencies


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p) - 1)]


async def _measure(stack: Stack, clients: int, messages: int) -> list[str]:
    env = {"VIDIVO_REDIS_URL": REDIS_URL, "VIDIVO_SIGNAL_IDLE_TIMEOUT_SECONDS": "600"}
    a, a_process = stack.serve("api-a", **env)
    b, _ = stack.serve("api-b", **env)
    pairs = clients // 2
    host_token, calls = await _start_calls(a, pairs + 2)
    relay_same, relay_cross = calls[-1], calls[-2]
    calls = calls[:pairs]

    same = await _relay_latency(
        _ws(a, relay_same[0], host_token), _ws(a, relay_same[0], relay_same[1]), messages
    )
    cross = await _relay_latency(
        _ws(a, relay_cross[0], host_token), _ws(b, relay_cross[0], relay_cross[1]), messages
    )

    before = rss_kib(a_process.pid)
    gate = asyncio.Semaphore(100)
    sockets: list[websockets.ClientConnection] = []

    async def join(url: str) -> None:
        async with gate:
            connection = await websockets.connect(url, open_timeout=120)
            await asyncio.wait_for(connection.recv(), timeout=120)  # the welcome: present
            sockets.append(connection)

    started = time.monotonic()
    await asyncio.gather(
        *(
            join(_ws(a, session_id, token))
            for session_id, guest_token in calls
            for token in (host_token, guest_token)
        )
    )
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(2)
    after = rss_kib(a_process.pid)
    loaded_same = await _relay_latency(
        _ws(a, relay_same[0], host_token), _ws(a, relay_same[0], relay_same[1]), messages
    )
    await asyncio.gather(*(s.close() for s in sockets))
    per_connection = (after - before) / len(sockets)
    return [
        "| figure | value |",
        "|---|---:|",
        f"| concurrent WebSocket clients on one instance | {len(sockets):,} "
        f"(opened in {connect_seconds:.0f} s, each recording presence) |",
        f"| instance memory: idle → with all clients | {before / 1024:.0f} MiB → "
        f"{after / 1024:.0f} MiB |",
        f"| memory per connection | {per_connection:.1f} KiB |",
        f"| relay latency, both peers on one instance, p50 / p99 | "
        f"{statistics.median(same):.2f} ms / {_pct(same, 0.99):.2f} ms |",
        f"| relay latency, peers on two instances (Redis), p50 / p99 | "
        f"{statistics.median(cross):.2f} ms / {_pct(cross, 0.99):.2f} ms |",
        f"| relay latency on one instance with all clients connected, p50 / p99 | "
        f"{statistics.median(loaded_same):.2f} ms / {_pct(loaded_same, 0.99):.2f} ms |",
        "",
        f"Relay latency: {messages} ICE messages sent one after another from the guest, timed "
        "until the host's socket received each. Every message goes through the hub (Redis "
        "pub/sub when configured, as here, also between peers on one instance).",
    ]


def measure(stack: Stack, *, quick: bool) -> list[str]:
    _raise_fd_limit()
    stack.cli("hosts", "create", "--email", "signal@example.com", "--password", PASSWORD,
              "--display-name", "Signal Host", "--verified", "--connected")  # fmt: skip
    clients, messages = (500, 100) if quick else (5000, 500)
    return asyncio.run(_measure(stack, clients, messages))
