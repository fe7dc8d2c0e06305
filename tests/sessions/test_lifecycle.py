"""Starting, answering and ending calls; who may see and do what."""

from __future__ import annotations

import asyncio

from tests.conftest import bearer
from tests.sessions.conftest import websocket_transport
from vidivo.calls.ledger import audit


async def test_starting_a_call_holds_the_first_window_and_waits_for_the_host(calls, client):
    host = await calls.hosts.create()
    link = await calls.link(host, max_uses=3)
    response = await calls.start(link["short_code"])
    assert response.status_code == 201
    body = response.json()
    session = body["session"]
    assert session["state"] == "waiting_for_host"
    assert session["link_id"] == link["id"]
    assert session["billed"] == "0.00"
    assert session["live_seconds"] == 0
    assert session["current_window"] == 1
    assert body["guest_token"]
    opened = await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)
    assert opened.json()["link"]["use_count"] == 1


async def test_the_host_declining_releases_the_hold_and_gives_the_use_back(calls, client, context):
    call = await calls.started()
    declined = await client.post(
        f"/v1/sessions/{call.session_id}/decline", headers=call.host.headers
    )
    assert declined.status_code == 200
    assert declined.json()["session"]["state"] == "declined"
    charges = await calls.charges(call)
    assert charges["windows"][0]["state"] == "released"
    assert charges["totals"]["captured"] == "0.00"
    link = await client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    assert link.json()["link"]["use_count"] == 0
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_second_accept_and_an_end_after_end_are_conflicts(calls, client):
    call = await calls.started()
    url = f"/v1/sessions/{call.session_id}"
    assert (await client.post(f"{url}/accept", headers=call.host.headers)).status_code == 200
    again = await client.post(f"{url}/accept", headers=call.host.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_state"
    assert (await calls.end(call, "host")).status_code == 200
    after = await calls.end(call, "guest")
    assert after.status_code == 409


async def test_the_guest_token_reaches_only_its_own_session(calls, client):
    first = await calls.started()
    second = await calls.started(host=first.host)
    mine = await client.get(f"/v1/sessions/{first.session_id}", headers=first.guest_headers)
    assert mine.status_code == 200
    other = await client.get(f"/v1/sessions/{second.session_id}", headers=first.guest_headers)
    assert other.status_code == 404
    listing = await client.get("/v1/sessions", headers=first.guest_headers)
    assert listing.status_code == 401  # a guest token is not a host login
    accept = await client.post(
        f"/v1/sessions/{first.session_id}/accept", headers=first.guest_headers
    )
    assert accept.status_code == 401


async def test_another_host_cannot_see_or_answer_the_call(calls, client, hosts):
    call = await calls.started()
    stranger = await hosts.create()
    url = f"/v1/sessions/{call.session_id}"
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    assert (await client.post(f"{url}/accept", headers=stranger.headers)).status_code == 404
    assert (await client.get(f"{url}/charges", headers=stranger.headers)).status_code == 404


async def test_a_stranger_cannot_join_the_signaling_socket(calls, hosts):
    from httpx_ws import WebSocketDisconnect, aconnect_ws

    call = await calls.started()
    stranger = await hosts.create()
    for token in ("nonsense", stranger.access_token):
        import httpx

        transport = websocket_transport(calls.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as ws_client:
            url = f"/v1/sessions/{call.session_id}/signal?token={token}"
            try:
                async with aconnect_ws(url, ws_client) as ws:
                    await ws.receive_json(timeout=2)
                refused = False
            except (WebSocketDisconnect, Exception):
                refused = True
        assert refused, token


async def test_the_host_lists_its_sessions_with_filters_and_pages(calls, client):
    host = await calls.hosts.create()
    link_a = await calls.link(host)
    link_b = await calls.link(host)
    started = [await calls.started(host=host, link=link_a) for _ in range(3)]
    await calls.started(host=host, link=link_b)
    await client.post(f"/v1/sessions/{started[0].session_id}/decline", headers=host.headers)
    page = (await client.get("/v1/sessions?limit=2", headers=host.headers)).json()
    assert len(page["sessions"]) == 2
    assert page["pagination"]["has_more"] is True
    rest = (
        await client.get(
            f"/v1/sessions?limit=2&cursor={page['pagination']['cursor']}", headers=host.headers
        )
    ).json()
    ids = [s["id"] for s in page["sessions"] + rest["sessions"]]
    assert len(set(ids)) == 4
    by_link = await client.get(f"/v1/sessions?link_id={link_a['id']}", headers=host.headers)
    assert len(by_link.json()["sessions"]) == 3
    declined = (await client.get("/v1/sessions?state=declined", headers=host.headers)).json()
    assert [s["id"] for s in declined["sessions"]] == [started[0].session_id]
    bad = await client.get("/v1/sessions?state=flying", headers=host.headers)
    assert bad.status_code == 400


async def test_starting_on_unusable_links_is_refused_and_holds_nothing(calls, client, clock):
    host = await calls.hosts.create()
    expired = await calls.link(host, expires_at="2026-03-15T10:01:00Z")
    later = await calls.link(host, scheduled_start="2026-03-15T12:00:00Z")
    deleted = await calls.link(host)
    await client.delete(f"/v1/links/{deleted['id']}", headers=host.headers)
    assert (await calls.start("doesnotexist")).status_code == 404
    assert (await calls.start(deleted["short_code"])).status_code == 404
    not_yet = await calls.start(later["short_code"])
    assert not_yet.status_code == 409
    assert not_yet.json()["error"]["code"] == "link_not_in_schedule"
    assert not_yet.json()["error"]["details"][0] == {
        "field": "scheduled_start",
        "message": "2026-03-15T12:00:00Z",
    }
    clock.advance(120)
    gone = await calls.start(expired["short_code"])
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "link_expired"
    listing = (await client.get("/v1/sessions", headers=host.headers)).json()
    assert listing["sessions"] == []


async def test_bad_start_bodies_are_validation_errors(calls):
    host = await calls.hosts.create()
    link = await calls.link(host)
    url = f"/v1/links/{link['short_code']}/sessions"
    for body in (
        {},
        {"guest_name": "A", "guest_email": "nope", "payment_method_id": "pm_card_visa"},
        {"guest_name": "", "guest_email": "a@example.com", "payment_method_id": "pm_card_visa"},
        {"guest_name": "A", "guest_email": "a@example.com", "payment_method_id": "pm_unknown"},
        {
            "guest_name": "A",
            "guest_email": "a@example.com",
            "payment_method_id": "pm_card_visa",
            "max_spend": 10,
        },
    ):
        response = await calls.client.post(url, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"


async def test_a_single_use_link_taken_by_a_crowd_gives_exactly_one_call(
    calls, client, context, is_postgres
):
    host = await calls.hosts.create()
    link = await calls.link(host, max_uses=1)
    crowd = 50 if is_postgres else 20  # SQLite serializes writers; PostgreSQL really races
    responses = await asyncio.gather(*[calls.start(link["short_code"]) for _ in range(crowd)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert set(statuses) == {201, 410}
    for response in responses:
        if response.status_code == 410:
            assert response.json()["error"]["code"] == "link_exhausted"
    opened = await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)
    assert opened.status_code == 410  # exhausted
    # No hold is left behind for the losers: every session but the winner released its hold.
    listing = (await client.get("/v1/sessions?limit=100", headers=host.headers)).json()
    waiting = [s for s in listing["sessions"] if s["state"] == "waiting_for_host"]
    assert len(waiting) == 1
    for session in listing["sessions"]:
        if session["state"] != "waiting_for_host":
            charges = (
                await client.get(f"/v1/sessions/{session['id']}/charges", headers=host.headers)
            ).json()
            assert charges["totals"]["captured"] == "0.00"
            assert all(w["state"] in ("released", "declined") for w in charges["windows"])
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_guests_without_a_token_get_401(client, calls):
    call = await calls.started()
    assert (await client.get(f"/v1/sessions/{call.session_id}")).status_code == 401
    assert (
        await client.get(f"/v1/sessions/{call.session_id}", headers=bearer("x.y.z"))
    ).status_code == 401
