"""The public link view is cached for speed, yet never shows a link that changed."""

from __future__ import annotations

from tests.sessions.conftest import Calls


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
            "host": {"display_name": "Dr. Rivera"},
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
