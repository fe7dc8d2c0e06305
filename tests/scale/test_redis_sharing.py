"""What instances share through a real Redis: events (pub/sub) and rate-limit counters."""

from __future__ import annotations

import asyncio
import contextlib
import os

import httpx
import pytest
from limits.aio.storage import RedisStorage
from redis import asyncio as aioredis

from vidivo.app import create_app
from vidivo.core.db import dispose, new_id
from vidivo.core.errors import RateLimited
from vidivo.core.hub import RedisHub
from vidivo.core.ratelimit import Backoff, RateLimiter, per_seconds

REDIS_URL = os.environ.get("VIDIVO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module", autouse=True)
async def redis_answers() -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:  # a missing service fails the suite, it never skips
        pytest.fail(f"Redis at {REDIS_URL} does not answer ({error}); .ci/run starts it")
    finally:
        await client.aclose()


async def test_an_event_published_on_one_instance_reaches_a_socket_on_another():
    first, second = RedisHub(REDIS_URL), RedisHub(REDIS_URL)
    channel = f"session-{new_id()}"
    try:
        on_first = await first.subscribe(channel)
        on_second = await second.subscribe(channel)
        await second.publish(channel, {"type": "offer", "sdp": "v=0", "from": "guest"})
        assert await asyncio.wait_for(on_first.get(), 5) == {
            "type": "offer",
            "sdp": "v=0",
            "from": "guest",
        }
        # The publisher's own instance hears it too (the other peer may be connected there).
        assert (await asyncio.wait_for(on_second.get(), 5))["type"] == "offer"
        # Another channel's events do not leak in.
        await first.publish(f"session-{new_id()}", {"type": "ended"})
        await first.publish(channel, {"type": "paused"})
        assert (await asyncio.wait_for(on_second.get(), 5))["type"] == "paused"
    finally:
        await first.close()
        await second.close()


async def test_after_the_last_socket_leaves_the_instance_stops_listening():
    first, second = RedisHub(REDIS_URL), RedisHub(REDIS_URL)
    channel = f"session-{new_id()}"
    try:
        queue = await first.subscribe(channel)
        await first.unsubscribe(channel, queue)
        await second.publish(channel, {"type": "offer"})
        await asyncio.sleep(0.3)
        assert queue.empty()
        counts = await aioredis.from_url(REDIS_URL).pubsub_numsub(RedisHub.PREFIX + channel)
        assert counts[0][1] == 0
    finally:
        await first.close()
        await second.close()


async def test_with_redis_down_peers_on_one_instance_still_hear_each_other(caplog):
    hub = RedisHub("redis://127.0.0.1:1/0")  # nothing listens there
    channel = f"session-{new_id()}"
    try:
        queue = await hub.subscribe(channel)
        await hub.publish(channel, {"type": "answer", "from": "host"})
        assert await asyncio.wait_for(queue.get(), 5) == {"type": "answer", "from": "host"}
        assert "delivering locally only" in caplog.text
    finally:
        await hub.close()


async def test_rate_limits_are_counted_across_instances():
    def limiter() -> RateLimiter:
        return RateLimiter(
            RedisStorage(f"async+{REDIS_URL}", implementation="redispy", key_prefix="vidivo:test")
        )

    first, second = limiter(), limiter()
    item, key = per_seconds(3, 60), f"client-{new_id()}"
    await first.hit(item, key)
    await second.hit(item, key)
    await first.hit(item, key)
    with pytest.raises(RateLimited) as refused:
        await second.hit(item, key)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60


async def test_a_link_deleted_on_one_instance_is_gone_from_the_others_cache(settings, clock, hosts):
    shared = settings.model_copy(update={"redis_url": REDIS_URL, "worker": False})
    first, second = create_app(shared, clock=clock), create_app(shared, clock=clock)
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for instance in (first, second):
            await stack.enter_async_context(instance.router.lifespan_context(instance))
            transport = httpx.ASGITransport(app=instance)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://t")
                )
            )
        a, b = clients
        host = await hosts.create()
        created = await b.post(
            "/v1/links",
            headers=host.headers,
            json={"rate_per_minute": "2.50", "window_size_minutes": 10},
        )
        link = created.json()["link"]
        url = f"/v1/links/{link['short_code']}"
        assert (await a.get(url)).status_code == 200  # cached on the first instance
        deleted = await b.delete(f"/v1/links/{link['id']}", headers=host.headers)
        assert deleted.status_code == 204
        for _ in range(50):  # the invalidation travels through Redis
            if (await a.get(url)).status_code == 404:
                break
            await asyncio.sleep(0.02)
        assert (await a.get(url)).status_code == 404


async def test_with_redis_down_requests_that_need_it_get_a_clear_503(settings, clock):
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0", "worker": False})
    app = create_app(down, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # Login throttling counts attempts in Redis.
        response = await client.post(
            "/v1/auth/token", json={"email": "x@example.com", "password": "whatever-long"}
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["Retry-After"] == "5"
        # What does not need Redis keeps working.
        assert (await client.get("/healthz")).status_code == 200
    await dispose(app.state.context.engine)


async def test_a_login_backoff_set_on_one_instance_holds_on_another():
    def backoff() -> Backoff:
        storage = RedisStorage(
            f"async+{REDIS_URL}", implementation="redispy", key_prefix="vidivo:test"
        )
        return Backoff(storage, base=30, longest=3600, memory=3600)

    first, second = backoff(), backoff()
    key = f"login/someone@example.com/192.0.2.{new_id()}"
    await first.failed(key, free=2)
    await second.check(key)  # one failure is free
    await second.failed(key, free=2)
    with pytest.raises(RateLimited) as refused:
        await first.check(key)
    assert 25 <= int(refused.value.headers["Retry-After"]) <= 30
    await second.failed(key, free=2)  # a failure that slipped in concurrently doubles it
    with pytest.raises(RateLimited) as refused:
        await first.check(key)
    assert 55 <= int(refused.value.headers["Retry-After"]) <= 60
    await first.succeeded(key)
    await second.check(key)
