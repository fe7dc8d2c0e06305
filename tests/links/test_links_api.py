"""The Call Links API, statement by statement of the published reference."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from tests.conftest import bearer
from vidivo.auth.models import User
from vidivo.links.models import Link

SEED_BODY = {
    "rate_per_minute": "2.50",
    "window_size_minutes": 10,
    "expires_at": "2026-03-22T00:00:00Z",
    "max_uses": 1,
    "label": "Session with Alex",
    "scheduled_start": None,
    "scheduled_end": None,
}
LIST_KEYS = {
    "id",
    "short_code",
    "url",
    "rate_per_minute",
    "window_size_minutes",
    "expires_at",
    "max_uses",
    "use_count",
    "label",
    "is_active",
    "created_at",
}
FULL_KEYS = LIST_KEYS | {"host_id", "scheduled_start", "scheduled_end"}
PUBLIC_KEYS = {
    "short_code",
    "url",
    "host",
    "rate_per_minute",
    "window_size_minutes",
    "is_active",
    "scheduled_start",
    "scheduled_end",
}


async def create(client, host, **fields):
    body = {"rate_per_minute": "2.50", "window_size_minutes": 10, **fields}
    return await client.post("/v1/links", headers=host.headers, json=body)


async def links_of(client, host, query=""):
    response = await client.get(f"/v1/links{query}", headers=host.headers)
    assert response.status_code == 200, response.text
    return response.json()


# POST /v1/links -------------------------------------------------------------------------


async def test_creating_the_seed_example_returns_201_with_every_field(client, hosts):
    host = await hosts.create()
    response = await client.post("/v1/links", headers=host.headers, json=SEED_BODY)
    assert response.status_code == 201
    link = response.json()["link"]
    assert set(link) == FULL_KEYS
    assert len(link["id"]) == 26
    assert len(link["short_code"]) == 10
    assert link["short_code"].isalnum() and link["short_code"] == link["short_code"].lower()
    assert link["url"] == f"https://vidivo.test/c/{link['short_code']}"
    assert link["host_id"] == host.id
    assert link["rate_per_minute"] == "2.50"
    assert link["window_size_minutes"] == 10
    assert link["expires_at"] == "2026-03-22T00:00:00Z"
    assert link["max_uses"] == 1
    assert link["use_count"] == 0
    assert link["label"] == "Session with Alex"
    assert link["scheduled_start"] is None and link["scheduled_end"] is None
    assert link["is_active"] is True
    assert link["created_at"] == "2026-03-15T10:00:00Z"


async def test_optional_fields_default_to_null(client, hosts):
    host = await hosts.create()
    link = (await create(client, host)).json()["link"]
    for field in ("expires_at", "max_uses", "label", "scheduled_start", "scheduled_end"):
        assert link[field] is None, field


async def test_rates_are_normalised_to_two_decimals_and_offsets_to_utc(client, hosts):
    host = await hosts.create()
    link = (
        await create(
            client,
            host,
            rate_per_minute="3",
            expires_at="2026-03-22T02:00:00+02:00",
            scheduled_start="2026-03-16T09:30:00.250Z",
        )
    ).json()["link"]
    assert link["rate_per_minute"] == "3.00"
    assert link["expires_at"] == "2026-03-22T00:00:00Z"
    assert link["scheduled_start"] == "2026-03-16T09:30:00.250000Z"


@pytest.mark.parametrize("rate", ["0.50", "999.99", "0.5", "12.3"])
async def test_rates_at_and_inside_the_bounds_are_accepted(client, hosts, rate):
    host = await hosts.create()
    assert (await create(client, host, rate_per_minute=rate)).status_code == 201


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rate_per_minute": "0.49"}, "rate_per_minute"),
        ({"rate_per_minute": "1000.00"}, "rate_per_minute"),
        ({"rate_per_minute": "2.505"}, "rate_per_minute"),
        ({"rate_per_minute": "-2.50"}, "rate_per_minute"),
        ({"rate_per_minute": "two"}, "rate_per_minute"),
        ({"rate_per_minute": "1e2"}, "rate_per_minute"),
        ({"rate_per_minute": 2.5}, "rate_per_minute"),
        ({"rate_per_minute": None}, "rate_per_minute"),
        ({"window_size_minutes": 0}, "window_size_minutes"),
        ({"window_size_minutes": 61}, "window_size_minutes"),
        ({"window_size_minutes": "10"}, "window_size_minutes"),
        ({"window_size_minutes": 10.5}, "window_size_minutes"),
        ({"window_size_minutes": True}, "window_size_minutes"),
        ({"max_uses": 0}, "max_uses"),
        ({"max_uses": -1}, "max_uses"),
        ({"max_uses": "1"}, "max_uses"),
        ({"label": "x" * 121}, "label"),
        ({"label": 7}, "label"),
        ({"expires_at": "2026-03-15T10:00:00Z"}, "expires_at"),
        ({"expires_at": "2026-03-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2026-03-22T00:00:00"}, "expires_at"),
        ({"expires_at": "next tuesday"}, "expires_at"),
        ({"expires_at": 1774137600}, "expires_at"),
        (
            {"scheduled_start": "2026-03-16T11:00:00Z", "scheduled_end": "2026-03-16T10:00:00Z"},
            "scheduled_end",
        ),
        (
            {"scheduled_start": "2026-03-16T10:00:00Z", "scheduled_end": "2026-03-16T10:00:00Z"},
            "scheduled_end",
        ),
        ({"scheduled_end": "2026-03-14T10:00:00Z"}, "scheduled_end"),
        (
            {"scheduled_start": "2026-03-20T00:00:00Z", "expires_at": "2026-03-19T00:00:00Z"},
            "scheduled_start",
        ),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_invalid_fields_are_400_naming_the_field_and_create_nothing(
    client, hosts, fields, field
):
    host = await hosts.create()
    response = await create(client, host, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]], error
    assert (await links_of(client, host))["links"] == []


async def test_missing_required_fields_are_named(client, hosts):
    host = await hosts.create()
    response = await client.post("/v1/links", headers=host.headers, json={})
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert response.status_code == 400
    assert fields == {"rate_per_minute", "window_size_minutes"}


async def test_bodies_that_are_not_a_json_object_are_refused(client, hosts):
    host = await hosts.create()
    json_headers = {**host.headers, "Content-Type": "application/json"}
    for raw in (b"[]", b"{", b'"link"', b"null"):
        response = await client.post("/v1/links", headers=json_headers, content=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "validation_error"
    form = await client.post("/v1/links", headers=host.headers, data={"rate_per_minute": "2.50"})
    assert form.status_code == 415
    huge = await create(client, host, label="x" * 70_000)
    assert huge.status_code == 413
    assert (await links_of(client, host))["links"] == []


async def test_creating_needs_a_verified_host_with_payouts_ready(client, hosts):
    anonymous = await client.post("/v1/links", json=SEED_BODY)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    unverified = await hosts.create(verified=False)
    refused = await create(client, unverified)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    not_connected = await hosts.create(connected=False)
    unpaid = await create(client, not_connected)
    assert unpaid.status_code == 402
    assert unpaid.json()["error"]["code"] == "stripe_not_connected"


async def test_who_you_are_is_decided_before_the_body(client, hosts):
    unverified = await hosts.create(verified=False)
    response = await client.post("/v1/links", headers=unverified.headers, json={"rate": 1})
    assert response.status_code == 403


async def test_a_suspended_host_cannot_create_links(client, hosts, context, clock):
    host = await hosts.create()
    async with context.session_factory() as db:
        await db.execute(update(User).where(User.id == host.id).values(suspended_at=clock.now()))
        await db.commit()
    assert (await create(client, host)).status_code == 403


# Idempotency ------------------------------------------------------------------------------


async def test_the_same_idempotency_key_and_body_replays_the_first_link(client, hosts):
    host = await hosts.create()
    headers = {**host.headers, "Idempotency-Key": "create-alex"}
    first = await client.post("/v1/links", headers=headers, json=SEED_BODY)
    again = await client.post("/v1/links", headers=headers, json=SEED_BODY)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len((await links_of(client, host))["links"]) == 1


async def test_the_same_key_with_another_body_is_a_409(client, hosts):
    host = await hosts.create()
    headers = {**host.headers, "Idempotency-Key": "k1"}
    await client.post("/v1/links", headers=headers, json=SEED_BODY)
    other = await client.post("/v1/links", headers=headers, json={**SEED_BODY, "max_uses": 2})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert len((await links_of(client, host))["links"]) == 1


async def test_idempotency_keys_belong_to_one_host(client, hosts):
    first, second = await hosts.create(), await hosts.create()
    a = await client.post(
        "/v1/links", headers={**first.headers, "Idempotency-Key": "same"}, json=SEED_BODY
    )
    b = await client.post(
        "/v1/links", headers={**second.headers, "Idempotency-Key": "same"}, json=SEED_BODY
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["link"]["id"] != b.json()["link"]["id"]


async def test_concurrent_retries_with_one_key_create_one_link(client, hosts):
    host = await hosts.create()
    headers = {**host.headers, "Idempotency-Key": "racing"}
    responses = await asyncio.gather(
        *[client.post("/v1/links", headers=headers, json=SEED_BODY) for _ in range(5)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["link"]["id"] for r in responses}) == 1
    assert len((await links_of(client, host))["links"]) == 1


async def test_malformed_idempotency_keys_are_refused(client, hosts):
    host = await hosts.create()
    for key in ("x" * 256, "has space"):
        response = await client.post(
            "/v1/links", headers={**host.headers, "Idempotency-Key": key}, json=SEED_BODY
        )
        assert response.status_code == 400, key


async def test_a_key_is_forgotten_after_24_hours(client, hosts, clock):
    host = await hosts.create()
    headers = {**host.headers, "Idempotency-Key": "daily"}
    body = {**SEED_BODY, "expires_at": "2026-04-22T00:00:00Z"}
    first = await client.post("/v1/links", headers=headers, json=body)
    clock.advance(24 * 3600 + 1)
    _, fresh_access = None, (await hosts.login(host.email))[0]
    later = await client.post(
        "/v1/links", headers={**bearer(fresh_access), "Idempotency-Key": "daily"}, json=body
    )
    assert later.status_code == 201
    assert later.json()["link"]["id"] != first.json()["link"]["id"]


# GET /v1/links ----------------------------------------------------------------------------


async def test_the_list_has_the_seed_shape_newest_first(client, hosts):
    host = await hosts.create()
    ids = [(await create(client, host, label=f"n{i}")).json()["link"]["id"] for i in range(3)]
    page = await links_of(client, host)
    assert [link["id"] for link in page["links"]] == ids[::-1]
    assert all(set(link) == LIST_KEYS for link in page["links"])
    assert page["pagination"] == {"cursor": None, "has_more": False, "limit": 20}


async def test_three_pages_walk_every_link_once(client, hosts):
    host = await hosts.create()
    for i in range(25):
        await create(client, host, label=f"link {i}")
    first = await links_of(client, host, "?limit=10")
    assert first["pagination"]["has_more"] is True and first["pagination"]["limit"] == 10
    second = await links_of(client, host, f"?limit=10&cursor={first['pagination']['cursor']}")
    third = await links_of(client, host, f"?limit=10&cursor={second['pagination']['cursor']}")
    assert [len(p["links"]) for p in (first, second, third)] == [10, 10, 5]
    assert third["pagination"] == {"cursor": None, "has_more": False, "limit": 10}
    labels = [link["label"] for p in (first, second, third) for link in p["links"]]
    assert labels == [f"link {i}" for i in range(24, -1, -1)]


async def test_new_links_do_not_shift_later_pages(client, hosts):
    host = await hosts.create()
    for i in range(6):
        await create(client, host, label=f"old {i}")
    first = await links_of(client, host, "?limit=3")
    for i in range(4):
        await create(client, host, label=f"new {i}")
    second = await links_of(client, host, f"?limit=3&cursor={first['pagination']['cursor']}")
    assert [link["label"] for link in second["links"]] == ["old 2", "old 1", "old 0"]


async def test_the_default_limit_is_20_and_the_max_100(client, hosts):
    host = await hosts.create()
    for i in range(21):
        await create(client, host)
    page = await links_of(client, host)
    assert len(page["links"]) == 20 and page["pagination"]["has_more"] is True
    assert (await links_of(client, host, "?limit=100"))["pagination"]["limit"] == 100
    for bad in ("0", "101", "abc", "-1"):
        response = await client.get(f"/v1/links?limit={bad}", headers=host.headers)
        assert response.status_code == 400, bad
        assert response.json()["error"]["details"][0]["field"] == "limit"


async def test_forged_or_foreign_cursors_are_400(client, hosts):
    host, other = await hosts.create(), await hosts.create()
    for _ in range(3):
        await create(client, host)
        await create(client, other)
    cursor = (await links_of(client, host, "?limit=1"))["pagination"]["cursor"]
    foreign = (await links_of(client, other, "?limit=1"))["pagination"]["cursor"]
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    for bad in (flipped, "garbage", "eyJpZCI6IjEyMyJ9", foreign, "a.b"):
        response = await client.get(f"/v1/links?cursor={bad}", headers=host.headers)
        assert response.status_code == 400, bad
        assert response.json()["error"]["details"][0]["field"] == "cursor"


async def test_the_active_filter(client, hosts):
    host = await hosts.create()
    kept = (await create(client, host, label="kept")).json()["link"]
    gone = (await create(client, host, label="gone")).json()["link"]
    await client.delete(f"/v1/links/{gone['id']}", headers=host.headers)
    active = await links_of(client, host, "?active=true")
    inactive = await links_of(client, host, "?active=false")
    every = await links_of(client, host)
    assert [link["id"] for link in active["links"]] == [kept["id"]]
    assert [link["id"] for link in inactive["links"]] == [gone["id"]]
    assert inactive["links"][0]["is_active"] is False
    assert len(every["links"]) == 2
    assert (await client.get("/v1/links?active=maybe", headers=host.headers)).status_code == 400


async def test_a_host_sees_only_their_own_links(client, hosts):
    mine, theirs = await hosts.create(), await hosts.create()
    await create(client, theirs, label="secret")
    assert (await links_of(client, mine))["links"] == []
    assert (await client.get("/v1/links")).status_code == 401


# GET /v1/links/{short_code} -----------------------------------------------------------------


async def test_anyone_opening_a_link_sees_exactly_the_public_shape(client, hosts):
    host = await hosts.create(display_name="Jane Smith")
    link = (await client.post("/v1/links", headers=host.headers, json=SEED_BODY)).json()["link"]
    response = await client.get(f"/v1/links/{link['short_code']}")
    assert response.status_code == 200
    public = response.json()["link"]
    assert set(public) == PUBLIC_KEYS
    assert public == {
        "short_code": link["short_code"],
        "url": link["url"],
        "host": {"display_name": "Jane Smith", "bio": None, "availability": "offline"},
        "rate_per_minute": "2.50",
        "window_size_minutes": 10,
        "is_active": True,
        "scheduled_start": None,
        "scheduled_end": None,
    }


async def test_the_owner_sees_the_full_link_and_others_the_public_one(client, hosts):
    host, other = await hosts.create(), await hosts.create()
    link = (await create(client, host, label="private note")).json()["link"]
    owner = (await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)).json()
    assert set(owner["link"]) == FULL_KEYS | {"host"}
    assert owner["link"]["label"] == "private note"
    assert owner["link"]["use_count"] == 0
    stranger = await client.get(f"/v1/links/{link['short_code']}", headers=other.headers)
    assert set(stranger.json()["link"]) == PUBLIC_KEYS
    bad_token = await client.get(f"/v1/links/{link['short_code']}", headers=bearer("nope"))
    assert bad_token.status_code == 401


async def test_codes_are_case_insensitive(client, hosts):
    host = await hosts.create()
    code = (await create(client, host)).json()["link"]["short_code"]
    assert (await client.get(f"/v1/links/{code.upper()}")).status_code == 200


async def test_unknown_and_deleted_links_are_404_for_everyone(client, hosts):
    host = await hosts.create()
    link = (await create(client, host)).json()["link"]
    await client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    for path in ("/v1/links/zzzzzzzzzz", f"/v1/links/{link['short_code']}", "/v1/links/%20"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    owner = await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)
    assert owner.status_code == 404


async def test_an_expired_link_is_410_link_expired(client, hosts, clock):
    host = await hosts.create()
    link = (await create(client, host, expires_at="2026-03-15T11:00:00Z")).json()["link"]
    assert (await client.get(f"/v1/links/{link['short_code']}")).status_code == 200
    clock.advance(3600)
    response = await client.get(f"/v1/links/{link['short_code']}")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "link_expired"


async def test_a_used_up_link_is_410_link_exhausted(client, hosts, context):
    host = await hosts.create()
    link = (await create(client, host, max_uses=1)).json()["link"]
    async with context.session_factory() as db:
        await db.execute(update(Link).where(Link.id == link["id"]).values(use_count=1))
        await db.commit()
    response = await client.get(f"/v1/links/{link['short_code']}")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "link_exhausted"


async def test_a_link_outside_its_schedule_still_shows_the_schedule(client, hosts):
    host = await hosts.create()
    link = (
        await create(
            client,
            host,
            scheduled_start="2026-03-15T14:00:00Z",
            scheduled_end="2026-03-15T15:00:00Z",
        )
    ).json()["link"]
    public = (await client.get(f"/v1/links/{link['short_code']}")).json()["link"]
    assert public["scheduled_start"] == "2026-03-15T14:00:00Z"
    assert public["scheduled_end"] == "2026-03-15T15:00:00Z"


async def test_a_suspended_hosts_links_are_404(client, hosts, context, clock):
    host = await hosts.create()
    link = (await create(client, host)).json()["link"]
    async with context.session_factory() as db:
        await db.execute(update(User).where(User.id == host.id).values(suspended_at=clock.now()))
        await db.commit()
    assert (await client.get(f"/v1/links/{link['short_code']}")).status_code == 404


# DELETE /v1/links/{id} --------------------------------------------------------------------


async def test_the_owner_deletes_with_204_and_the_link_is_deactivated(client, hosts):
    host = await hosts.create()
    link = (await create(client, host)).json()["link"]
    response = await client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    assert response.status_code == 204
    assert response.content == b""
    listed = (await links_of(client, host))["links"]
    assert [(item["id"], item["is_active"]) for item in listed] == [(link["id"], False)]
    again = await client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    assert again.status_code == 204


async def test_another_host_gets_403_and_the_link_stays(client, hosts):
    host, other = await hosts.create(), await hosts.create()
    link = (await create(client, host)).json()["link"]
    response = await client.delete(f"/v1/links/{link['id']}", headers=other.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert (await client.get(f"/v1/links/{link['short_code']}")).status_code == 200


async def test_deleting_unknown_links_or_without_a_token(client, hosts):
    host = await hosts.create()
    link = (await create(client, host)).json()["link"]
    unknown = await client.delete("/v1/links/01JN2X7N1Q6I0TSCUYZ9AELGHI", headers=host.headers)
    assert unknown.status_code == 404
    assert (await client.delete("/v1/links/not-an-id", headers=host.headers)).status_code == 404
    assert (await client.delete(f"/v1/links/{link['id']}")).status_code == 401
