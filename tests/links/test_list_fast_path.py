"""`GET /v1/links` answered by its fast path (`links/fast_list.py`): the route's exact bytes in
one database statement, and every refusal still the route's, on the very next request."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.links.statements import statements
from vidivo.calls.suspension import suspend_host

BODIES = [
    {"rate_per_minute": "2.50", "window_size_minutes": 10},
    {
        "rate_per_minute": "4.00",
        "window_size_minutes": 5,
        "expires_at": "2026-03-22T00:00:00Z",
        "max_uses": 3,
        "label": "Séance avec Zoë",
    },
    {"rate_per_minute": "1.25", "window_size_minutes": 15, "label": "third"},
]


async def host_with_links(client, hosts):
    host = await hosts.create()
    ids = []
    for body in BODIES:
        response = await client.post("/v1/links", json=body, headers=host.headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["link"]["id"])
    assert (await client.delete(f"/v1/links/{ids[1]}", headers=host.headers)).status_code == 204
    return host


# Plain queries (the fast path answers) and a spelling of the same that only the route takes.
SAME_QUERY = [
    ("", "limit=020"),
    ("limit=2", "limit=02"),
    ("limit=1&active=true", "limit=01&active=yes"),
    ("active=false", "active=no"),
]


@pytest.mark.parametrize(("fast", "routed"), SAME_QUERY)
async def test_the_fast_path_answers_the_routes_bytes_in_one_statement(
    client, hosts, context, fast, routed
):
    host = await host_with_links(client, hosts)
    with statements(context) as fast_sql:
        answer = await client.get(f"/v1/links?{fast}", headers=host.headers)
    with statements(context) as routed_sql:
        reference = await client.get(f"/v1/links?{routed}", headers=host.headers)
    assert answer.status_code == reference.status_code == 200, answer.text
    assert answer.content == reference.content
    assert answer.headers["content-type"] == reference.headers["content-type"]
    assert answer.headers["content-length"] == reference.headers["content-length"]
    assert len(fast_sql) == 1  # login, user and page in one read
    assert len(routed_sql) >= 2


async def test_following_cursors_pages_as_the_route_does(client, hosts, context):
    host = await host_with_links(client, hosts)
    cursor, seen = None, []
    while True:
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        fast = await client.get(f"/v1/links?{query}", headers=host.headers)
        routed = await client.get(f"/v1/links?{query.replace('limit=1', 'limit=01')}",
                                  headers=host.headers)  # fmt: skip
        assert fast.status_code == 200, fast.text
        assert fast.content == routed.content
        page = fast.json()
        seen += [link["id"] for link in page["links"]]
        cursor = page["pagination"]["cursor"]
        if not page["pagination"]["has_more"]:
            break
    assert len(seen) == len(set(seen)) == len(BODIES)
    assert seen == sorted(seen, reverse=True)


async def test_another_hosts_cursor_and_a_bad_cursor_get_the_routes_400(client, hosts):
    host = await host_with_links(client, hosts)
    other = await host_with_links(client, hosts)
    cursor = (await client.get("/v1/links?limit=1", headers=other.headers)).json()["pagination"][
        "cursor"
    ]
    for bad in (cursor, "not-a-cursor"):
        response = await client.get(f"/v1/links?cursor={bad}", headers=host.headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "validation_error"


async def test_a_logged_out_token_is_refused_on_the_next_request(client, hosts):
    host = await host_with_links(client, hosts)
    assert (await client.get("/v1/links", headers=host.headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=host.headers)).status_code == 204
    response = await client.get("/v1/links", headers=host.headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_suspended_hosts_token_is_refused_on_the_next_request(client, hosts, context):
    host = await host_with_links(client, hosts)
    assert (await client.get("/v1/links", headers=host.headers)).status_code == 200
    await suspend_host(
        context.session_factory,
        context.clock,
        context.billing,
        context.public_links,
        context.hub,
        host.id,
    )
    response = await client.get("/v1/links", headers=host.headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "account_suspended"


async def test_refusals_are_the_routes(client, hosts):
    host = await host_with_links(client, hosts)
    assert (await client.get("/v1/links")).status_code == 401
    garbage = await client.get("/v1/links", headers=bearer("not.a.token"))
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == "unauthorized"
    too_many = await client.get("/v1/links?limit=101", headers=host.headers)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "validation_error"
