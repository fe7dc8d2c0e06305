"""The public link view is cached for speed, yet never shows a link that changed."""

from __future__ import annotations

import asyncio
import time

from tests.sessions.conftest import Calls
from vidivo.links.public_cache import PublicLinkCache, PublicView


async def create(client, host, **fields):
    body = {"rate_per_minute": "2.50", "window_size_minutes": 10, **fields}
    response = await client.post("/v1/links", headers=host.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["link"]


async def test_a_deleted_link_is_gone_at_once_though_it_was_cached(client, hosts):
    host = await hosts.create()
    link = await create(client, host)
    url = f"/v1/links/{link['short_code']}"
    assert (await client.get(url)).status_code == 200  # now in the cache
    assert (await client.delete(f"/v1/links/{link['id']}", headers=host.headers)).status_code == 204
    gone = await client.get(url)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_the_last_use_makes_the_link_exhausted_at_once_and_a_decline_gives_it_back(
    client, hosts, app, context
):
    calls = Calls(client, hosts, app)
    host = await hosts.create()
    link = await create(client, host, max_uses=1)
    url = f"/v1/links/{link['short_code']}"
    assert (await client.get(url)).status_code == 200
    started = await calls.start(link["short_code"])
    assert started.status_code == 201, started.text
    exhausted = await client.get(url)
    assert exhausted.status_code == 410
    assert exhausted.json()["error"]["code"] == "link_exhausted"
    # The host turns the call down: the use comes back, and so does the link.
    session_id = started.json()["session"]["id"]
    declined = await client.post(f"/v1/sessions/{session_id}/decline", headers=host.headers)
    assert declined.status_code == 200, declined.text
    assert (await client.get(url)).status_code == 200


async def test_an_expired_link_is_410_even_while_cached(client, hosts, clock):
    host = await hosts.create()
    link = await create(client, host, expires_at="2026-03-15T10:30:00Z")
    url = f"/v1/links/{link['short_code']}"
    assert (await client.get(url)).status_code == 200
    clock.advance(30 * 60)
    expired = await client.get(url)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "link_expired"


async def test_the_fast_path_answers_exactly_like_the_route(client, hosts):
    host = await hosts.create(display_name="Dr. Rivera")
    link = await create(client, host, label="private note")
    public = await client.get(f"/v1/links/{link['short_code'].upper()}")
    assert public.status_code == 200
    assert public.headers["content-type"] == "application/json"
    assert public.headers["x-content-type-options"] == "nosniff"
    assert public.json() == {
        "link": {
            "short_code": link["short_code"],
            "url": link["url"],
            "host": {"display_name": "Dr. Rivera", "bio": None, "availability": "offline"},
            "rate_per_minute": "2.50",
            "window_size_minutes": 10,
            "is_active": True,
            "scheduled_start": None,
            "scheduled_end": None,
        }
    }
    # With credentials the route answers: the owner sees everything, others the public view.
    owner = (await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)).json()
    assert owner["link"]["label"] == "private note"
    other = await hosts.create()
    seen = await client.get(f"/v1/links/{link['short_code']}", headers=other.headers)
    assert seen.json() == public.json()


def _view(marker: str) -> PublicView:
    return PublicView(
        host_id="h1", body=marker.encode(), expires_at=None, exhausted=False,
        stored_at=time.monotonic(),
    )  # fmt: skip


class SlowLoads:
    """The database read behind the cache, counted, each finishing when the test says so."""

    def __init__(self) -> None:
        self.count = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> PublicView:
        self.count += 1
        marker = f"load {self.count}"
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return _view(marker)


async def test_a_crowd_missing_the_cache_at_once_causes_one_read():
    # An expired entry of a viral link: every reader in that instant misses together.
    cache, loads = PublicLinkCache(ttl_seconds=5), SlowLoads()
    readers = [asyncio.create_task(cache.get_or_load("code", loads)) for _ in range(50)]
    await asyncio.sleep(0)
    loads.release.set()
    views = await asyncio.gather(*readers)
    assert loads.count == 1
    assert {view.body for view in views} == {b"load 1"}
    assert (await cache.get_or_load("code", loads)).body == b"load 1"  # now cached
    assert loads.count == 1


async def test_a_read_that_began_before_a_change_is_not_kept():
    cache, loads = PublicLinkCache(ttl_seconds=5), SlowLoads()
    before = asyncio.create_task(cache.get_or_load("code", loads))
    await asyncio.sleep(0)
    cache.forget(code="code")  # the link changed while the read was under way
    after = asyncio.create_task(cache.get_or_load("code", loads))
    await asyncio.sleep(0)
    loads.release.set()
    await asyncio.gather(before, after)
    assert loads.count == 2  # the request after the change did not share the older read
    assert (await after).body == b"load 2"
    assert cache.get("code") is not None and cache.get("code").body == b"load 2"


async def test_a_failed_read_fails_its_waiters_and_the_next_request_reads_again():
    cache, loads = PublicLinkCache(ttl_seconds=5), SlowLoads()
    loads.fail = ConnectionError("database unreachable")
    readers = [asyncio.create_task(cache.get_or_load("code", loads)) for _ in range(3)]
    await asyncio.sleep(0)
    loads.release.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    loads.fail = None
    assert (await cache.get_or_load("code", loads)).body == b"load 2"


async def test_a_reader_that_goes_away_does_not_cancel_the_read_for_the_others():
    cache, loads = PublicLinkCache(ttl_seconds=5), SlowLoads()
    leaving = asyncio.create_task(cache.get_or_load("code", loads))
    staying = asyncio.create_task(cache.get_or_load("code", loads))
    await asyncio.sleep(0)
    leaving.cancel()
    loads.release.set()
    assert (await staying).body == b"load 1"
    assert loads.count == 1


async def test_with_the_cache_off_every_request_reads():
    cache, loads = PublicLinkCache(ttl_seconds=0), SlowLoads()
    loads.release.set()
    await asyncio.gather(*(cache.get_or_load("code", loads) for _ in range(3)))
    assert loads.count == 3
