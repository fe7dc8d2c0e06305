"""The signaling socket as a client sees it: relay, presence events, limits, who gets in."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws

from tests.sessions.conftest import websocket_transport


async def close_code(app, url: str, *messages: str) -> int | None:
    # A refusal before the handshake: its close code, or the HTTP status over a real server.
    """Open the socket, send `messages`, and return the close code the server gave."""
    transport = websocket_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as ws_client:
        try:
            async with aconnect_ws(url, ws_client, max_message_size_bytes=1 << 20) as ws:
                for message in messages:
                    await ws.send_text(message)
                while True:
                    await ws.receive_json(timeout=5)
        except WebSocketDisconnect as closed:
            return closed.code
        except ExceptionGroup as group:  # the transport's task group wraps the close
            closed = group.subgroup(WebSocketDisconnect)
            return closed.exceptions[0].code if closed else None  # type: ignore[union-attr]
        except WebSocketUpgradeError as refused:
            return refused.response.status_code  # refused before the handshake finished
    return None


async def next_of(ws, kind: str) -> dict:
    while True:
        event = await ws.receive_json(timeout=5)
        if event["type"] == kind:
            return event


async def test_offer_answer_and_ice_reach_the_other_peer_only(calls):
    async with calls.live() as (_call, host_ws, guest_ws):
        await guest_ws.send_json({"type": "offer", "sdp": "v=0 guest-offer"})
        offer = await next_of(host_ws, "offer")
        assert offer == {"type": "offer", "sdp": "v=0 guest-offer", "from": "guest"}
        await host_ws.send_json({"type": "answer", "sdp": "v=0 host-answer"})
        await host_ws.send_json({"type": "ice", "candidate": {"candidate": "candidate:1"}})
        assert (await next_of(guest_ws, "answer"))["sdp"] == "v=0 host-answer"
        assert (await next_of(guest_ws, "ice"))["candidate"] == {"candidate": "candidate:1"}
        # Nobody hears their own messages back: a ping is answered by the pong, nothing else.
        await guest_ws.send_json({"type": "ping"})
        assert (await guest_ws.receive_json(timeout=5))["type"] in {"pong", "went_live"}


async def test_presence_drives_went_live_paused_and_resumed(calls):
    call = await calls.started()
    accepted = await calls.client.post(
        f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers
    )
    assert accepted.status_code == 200
    async with calls.join(call, "guest") as guest_ws:
        async with calls.join(call, "host"):
            assert (await next_of(guest_ws, "went_live"))["type"] == "went_live"
        await next_of(guest_ws, "peer_left")
        await next_of(guest_ws, "paused")
        assert (await calls.session(call))["state"] == "paused"
        async with calls.join(call, "host") as host_ws:
            await next_of(guest_ws, "resumed")
            assert (await calls.session(call))["state"] == "live"
            # The one joining last learns from the welcome that the other is there.
            del host_ws


async def test_the_welcome_says_whether_the_other_peer_is_there(calls):
    call = await calls.started()
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    transport = websocket_transport(calls.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        url = f"/v1/sessions/{call.session_id}/signal?token="
        async with aconnect_ws(url + call.guest_token, client) as guest:
            alone = await guest.receive_json(timeout=5)
            assert alone["type"] == "welcome" and alone["peer_present"] is False
            async with aconnect_ws(url + call.host.access_token, client) as host:
                welcome = await host.receive_json(timeout=5)
                assert welcome == {
                    "type": "welcome",
                    "role": "host",
                    "state": "live",
                    "peer_present": True,
                }


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 4400),
        ("[1, 2]", 4400),
        ('{"no": "type"}', 4400),
        ('{"type": "launch_missiles"}', 4400),
        (json.dumps({"type": "offer", "sdp": "x" * (64 * 1024)}), 4400),
    ],
    ids=["not-json", "not-an-object", "no-type", "unknown-type", "oversized"],
)
async def test_a_bad_message_closes_the_socket_with_4400(calls, message, code):
    call = await calls.started()
    url = f"/v1/sessions/{call.session_id}/signal?token={call.guest_token}"
    assert await close_code(calls.app, url, message) == code


async def test_a_flood_of_messages_closes_the_socket_with_4429(calls):
    call = await calls.started()
    url = f"/v1/sessions/{call.session_id}/signal?token={call.guest_token}"
    flood = ['{"type": "ping"}'] * 120  # the default budget is 50 a second
    assert await close_code(calls.app, url, *flood) == 4429


async def test_a_flood_on_the_host_feed_closes_it_like_the_call_socket(calls, hosts, app):
    host = await hosts.create()
    flood = ['{"type": "ping"}'] * 120  # the same budget as the call socket: 50 a second
    assert await close_code(app, f"/v1/host/events?token={host.access_token}", *flood) == 4429


async def test_strangers_and_other_calls_tokens_are_refused(calls, hosts):
    call = await calls.started()
    other = await calls.started()
    stranger = await hosts.create()
    base = f"/v1/sessions/{call.session_id}/signal"
    for token in ("", "nonsense", stranger.access_token, other.guest_token):
        assert await close_code(calls.app, f"{base}?token={token}") == 4403, token
    # The guest token of this call still works.
    async with calls.join(call, "guest"):
        pass


async def test_the_host_feed_rings_for_a_new_call(calls, hosts, app):
    host = await hosts.create()
    link = await calls.link(host)
    transport = websocket_transport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        aconnect_ws(f"/v1/host/events?token={host.access_token}", client) as feed,
    ):
        started = await calls.start(link["short_code"])
        assert started.status_code == 201, started.text
        event = await feed.receive_json(timeout=5)
        assert event == {"type": "incoming_call", "session_id": started.json()["session"]["id"]}
    # A guest token is not a host's: no feed.
    guest_token = started.json()["guest_token"]
    assert await close_code(app, f"/v1/host/events?token={guest_token}") == 4403


async def test_the_host_feed_drops_a_call_the_guest_cancels_while_it_rings(calls, hosts, app):
    host = await hosts.create()
    link = await calls.link(host)
    transport = websocket_transport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        aconnect_ws(f"/v1/host/events?token={host.access_token}", client) as feed,
    ):
        started = await calls.start(link["short_code"])
        session_id = started.json()["session"]["id"]
        assert (await feed.receive_json(timeout=5))["type"] == "incoming_call"
        guest = {"Authorization": f"Bearer {started.json()['guest_token']}"}
        ended = await calls.client.post(f"/v1/sessions/{session_id}/end", headers=guest)
        assert ended.status_code == 200, ended.text
        event = await feed.receive_json(timeout=5)
        assert event == {"type": "incoming_call_gone", "session_id": session_id}


async def test_without_turn_there_are_only_host_candidates(calls):
    call = await calls.started()
    response = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=call.guest_headers
    )
    assert response.json() == {
        "ice_servers": [],
        "ice_transport_policy": "all",
        "expires_at": None,
    }
