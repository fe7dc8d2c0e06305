"""Guessing short codes: many misses from one address are refused with 429 for a while."""

from __future__ import annotations

import httpx
import pytest

from tests.support import free_port, start_server, stop_server
from vidivo.app import create_app
from vidivo.core.config import Settings
from vidivo.core.db import dispose


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


GUEST = {
    "guest_name": "Alex",
    "guest_email": "alex@example.com",
    "payment_method_id": "pm_card_visa",
}


async def make_link(client, hosts) -> tuple[object, str]:
    host = await hosts.create()
    created = await client.post(
        "/v1/links",
        headers=host.headers,
        json={"rate_per_minute": "2.50", "window_size_minutes": 10},
    )
    return host, created.json()["link"]["short_code"]


async def test_misses_count_when_a_bearer_token_is_sent(client, hosts, context):
    host, _code = await make_link(client, hosts)
    for n in range(context.settings.link_misses_per_minute):
        miss = await client.get(f"/v1/links/xx{n:08d}", headers=host.headers)
        assert miss.status_code == 404, n
    refused = await client.get("/v1/links/xxxxxxxxxx", headers=host.headers)
    assert refused.status_code == 429


async def test_starting_a_call_on_an_unknown_code_is_a_counted_miss_whatever_the_body(
    client, hosts, context
):
    _host, real = await make_link(client, hosts)
    # An unknown code answers 404 before the body is looked at: a bad body on a guessed code
    # does not tell it apart from a live one (which would answer 400).
    assert (await client.post(f"/v1/links/{real}/sessions", json={})).status_code == 400
    for n in range(context.settings.link_misses_per_minute):
        miss = await client.post(f"/v1/links/ww{n:08d}/sessions", json={})
        assert miss.status_code == 404, (n, miss.text)
    refused = await client.post("/v1/links/wwwwwwwwww/sessions", json=GUEST)
    assert refused.status_code == 429
    assert (await client.post(f"/v1/links/{real}/sessions", json={})).status_code == 429


async def test_misses_by_every_route_add_up(client, hosts, context):
    host, _code = await make_link(client, hosts)
    allowed = context.settings.link_misses_per_minute
    routes = [
        lambda n: client.get(f"/v1/links/vv{n:08d}"),
        lambda n: client.get(f"/v1/links/vv{n:08d}", headers=host.headers),
        lambda n: client.get(f"/c/vv{n:08d}"),
        lambda n: client.post(f"/v1/links/vv{n:08d}/sessions", json=GUEST),
    ]
    for n in range(allowed):
        assert (await routes[n % len(routes)](n)).status_code == 404, n
    assert (await client.get("/v1/links/vvvvvvvvvv")).status_code == 429


async def test_forwarded_addresses_are_ignored_unless_the_peer_is_a_trusted_proxy(client, context):
    allowed = context.settings.link_misses_per_minute
    for n in range(allowed):
        spoofed = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert (await client.get(f"/v1/links/uu{n:08d}", headers=spoofed)).status_code == 404
    spoofed = {"X-Forwarded-For": "192.0.2.250"}
    assert (await client.get("/v1/links/uuuuuuuuuu", headers=spoofed)).status_code == 429


@pytest.fixture
def proxied_settings(settings):
    return settings.model_copy(update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"})


async def test_behind_a_trusted_proxy_the_client_is_the_last_address_it_did_not_add(
    proxied_settings, clock
):
    app = create_app(proxied_settings, clock=clock)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxy:
        allowed = proxied_settings.link_misses_per_minute
        for n in range(allowed):
            # The client writes whatever it likes first; our proxies append what they saw.
            chain = {"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.9, 10.1.2.3"}
            assert (await proxy.get(f"/v1/links/tt{n:08d}", headers=chain)).status_code == 404
        chain = {"X-Forwarded-For": "192.0.2.250, 198.51.100.9, 10.1.2.3"}
        assert (await proxy.get("/v1/links/tttttttttt", headers=chain)).status_code == 429
        # Another client behind the same proxy is its own address.
        other = {"X-Forwarded-For": "198.51.100.10"}
        assert (await proxy.get("/v1/links/tttttttttt", headers=other)).status_code == 404
    await dispose(app.state.context.engine)


def test_a_real_server_does_not_let_x_forwarded_for_reset_the_count(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base, {"VIDIVO_LINK_MISSES_PER_MINUTE": "3"})
    try:
        answers = [
            httpx.get(
                f"{base}/v1/links/ss{n:08d}", headers={"X-Forwarded-For": f"192.0.2.{n}"}
            ).status_code
            for n in range(5)
        ]
    finally:
        stop_server(server)
    assert answers == [404, 404, 404, 429, 429]


def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start(settings):
    with pytest.raises(ValueError, match=r"proxy\.example"):
        Settings(**{**settings.model_dump(), "trusted_proxies": "10.0.0.1, proxy.example"})
