"""Guessing short codes: many misses from one address are refused with 429 for a while."""

from __future__ import annotations

import httpx


async def test_many_unknown_codes_from_one_address_get_429_then_even_real_links_do(
    client, hosts, app, context
):
    host = await hosts.create()
    created = await client.post(
        "/v1/links",
        headers=host.headers,
        json={"rate_per_minute": "2.50", "window_size_minutes": 10},
    )
    real = created.json()["link"]["short_code"]
    allowed = context.settings.link_misses_per_minute
    for n in range(allowed):
        miss = await client.get(f"/v1/links/zz{n:08d}")
        assert miss.status_code == 404, n
    refused = await client.get("/v1/links/zzzzzzzzzz")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The guesser learns nothing more, not even about codes that exist...
    assert (await client.get(f"/v1/links/{real}")).status_code == 429
    page = await client.get(f"/c/{real}")
    assert page.status_code == 429 and "Too many unknown links" in page.text
    # ...while everyone else is served as before.
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await other.get(f"/v1/links/{real}")).status_code == 200
        assert (await other.get(f"/c/{real}")).status_code == 200


async def test_misses_on_the_guest_page_count_too(client, context):
    for n in range(context.settings.link_misses_per_minute):
        assert (await client.get(f"/c/yy{n:08d}")).status_code == 404
    assert (await client.get("/c/yyyyyyyyyy")).status_code == 429
