"""`POST /v1/links` answered by its fast path (`links/fast_create.py`): one database statement,
the route's answer, and every refusal still the route's, on the very next request, with
nothing written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import bearer
from tests.links.statements import statements
from vidivo.calls.suspension import suspend_host
from vidivo.links import service
from vidivo.links.models import Link

BODIES = [
    {"rate_per_minute": "2.50", "window_size_minutes": 10},
    {
        "rate_per_minute": "999.99",
        "window_size_minutes": 60,
        "expires_at": "2026-03-22T00:00:00+02:00",
        "max_uses": 3,
        "label": "Séance avec Zoë",
        "scheduled_start": "2026-03-21T09:00:00Z",
        "scheduled_end": "2026-03-21T10:30:00.250Z",
    },
]
# Fields a new link gets afresh on every creation.
FRESH = {"id", "short_code", "url", "created_at"}


async def link_count(context) -> int:
    async with context.session_factory() as db:
        return int(await db.scalar(select(func.count()).select_from(Link)) or 0)


@pytest.mark.parametrize("body", BODIES)
async def test_the_fast_path_answers_as_the_route_in_one_statement(client, hosts, context, body):
    host = await hosts.create()
    with statements(context) as fast_sql:
        fast = await client.post("/v1/links", json=body, headers=host.headers)
    # With an Idempotency-Key the route itself answers.
    with statements(context) as routed_sql:
        routed = await client.post(
            "/v1/links", json=body, headers={**host.headers, "Idempotency-Key": "reference"}
        )
    assert fast.status_code == routed.status_code == 201, fast.text
    assert len(fast_sql) == 1  # login, host, payouts and the new row in one statement
    assert len(routed_sql) >= 4
    assert fast.headers["content-type"] == routed.headers["content-type"]
    fast_link, routed_link = fast.json()["link"], routed.json()["link"]
    assert list(fast_link) == list(routed_link)  # same fields, same order
    assert {k: v for k, v in fast_link.items() if k not in FRESH} == {
        k: v for k, v in routed_link.items() if k not in FRESH
    }
    assert fast_link["url"].endswith(f"/c/{fast_link['short_code']}")
    # The same compact JSON as the route's (no spaces, UTF-8 as is).
    assert (
        fast.content == json.dumps(fast.json(), ensure_ascii=False, separators=(",", ":")).encode()
    )
    # What was written is what was answered.
    owner = await client.get(f"/v1/links/{fast_link['short_code']}", headers=host.headers)
    assert owner.status_code == 200
    assert {k: owner.json()["link"][k] for k in fast_link} == fast_link
    listed = (await client.get("/v1/links", headers=host.headers)).json()["links"]
    assert fast_link["id"] in [link["id"] for link in listed]


async def test_a_cached_miss_for_the_new_code_is_dropped(client, hosts, monkeypatch):
    host = await hosts.create()
    code = "fastpath01"
    assert (await client.get(f"/v1/links/{code}")).status_code == 404  # cached as a miss
    monkeypatch.setattr(service, "new_short_code", lambda: code)
    created = await client.post("/v1/links", json=BODIES[0], headers=host.headers)
    assert created.status_code == 201, created.text
    assert created.json()["link"]["short_code"] == code
    assert (await client.get(f"/v1/links/{code}")).status_code == 200


async def test_a_taken_short_code_goes_to_the_route_which_draws_another(
    client, hosts, context, monkeypatch
):
    host = await hosts.create()
    taken = (await client.post("/v1/links", json=BODIES[0], headers=host.headers)).json()["link"]
    draws = iter([taken["short_code"], taken["short_code"], "freshcode1"])
    monkeypatch.setattr(service, "new_short_code", lambda: next(draws))
    before = await link_count(context)
    created = await client.post("/v1/links", json=BODIES[0], headers=host.headers)
    assert created.status_code == 201, created.text
    assert created.json()["link"]["short_code"] == "freshcode1"
    assert await link_count(context) == before + 1


@pytest.mark.parametrize(
    ("verified", "connected", "status", "code"),
    [(False, True, 403, "forbidden"), (True, False, 402, "stripe_not_connected")],
)
async def test_hosts_who_may_not_create_get_the_routes_refusal(
    client, hosts, context, verified, connected, status, code
):
    host = await hosts.create(verified=verified, connected=connected)
    before = await link_count(context)
    response = await client.post("/v1/links", json=BODIES[0], headers=host.headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert await link_count(context) == before


async def test_a_logged_out_token_is_refused_on_the_next_request(client, hosts, context):
    host = await hosts.create()
    assert (await client.post("/v1/links", json=BODIES[0], headers=host.headers)).status_code == 201
    assert (await client.post("/v1/auth/logout", headers=host.headers)).status_code == 204
    before = await link_count(context)
    response = await client.post("/v1/links", json=BODIES[0], headers=host.headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert await link_count(context) == before


async def test_a_suspended_hosts_token_is_refused_on_the_next_request(client, hosts, context):
    host = await hosts.create()
    assert (await client.post("/v1/links", json=BODIES[0], headers=host.headers)).status_code == 201
    await suspend_host(
        context.session_factory,
        context.clock,
        context.billing,
        context.public_links,
        context.hub,
        host.id,
    )
    before = await link_count(context)
    response = await client.post("/v1/links", json=BODIES[0], headers=host.headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "account_suspended"
    assert await link_count(context) == before


BAD_BODIES = [
    b'{"rate_per_minute": 2.5, "window_size_minutes": 10}',
    b'{"rate_per_minute": "0.49", "window_size_minutes": 10}',
    b'{"rate_per_minute": "2.50", "window_size_minutes": 10, "extra": 1}',
    b'{"rate_per_minute": "2.50", "window_size_minutes": 10, "expires_at": "2020-01-01T00:00:00Z"}',
    b'{"rate_per_minute": "2.50", "window_size_minutes": 10,',
    b"[]",
    b"",
]


@pytest.mark.parametrize("raw", BAD_BODIES)
async def test_bad_bodies_get_the_routes_400_and_write_nothing(client, hosts, context, raw):
    host = await hosts.create()
    before = await link_count(context)
    headers = {**host.headers, "Content-Type": "application/json"}
    response = await client.post("/v1/links", content=raw, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert await link_count(context) == before


async def test_other_tokens_get_the_routes_401(client, context):
    before = await link_count(context)
    for headers in ({}, bearer("not.a.token"), {"Authorization": "Basic abc"}):
        response = await client.post("/v1/links", json=BODIES[0], headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
    assert await link_count(context) == before
