"""ICE servers for a call: STUN as configured, TURN credentials coturn accepts, and a
lifetime that follows the call's paid time (a dropped socket is never a free relay)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.conftest import bearer


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "stun_urls": "stun:127.0.0.1:3478",
            "turn_urls": "turn:127.0.0.1:3478?transport=udp, turn:127.0.0.1:3478?transport=tcp",
            "turn_secret": "s3cret",
            "turn_credential_ttl_seconds": 3600,
        }
    )


async def test_ice_servers_give_turn_credentials_coturn_accepts(calls, context):
    call = await calls.started()
    response = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=call.guest_headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"], "username": None, "credential": None}
    assert turn["urls"] == [
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
    ]
    expiry, name = turn["username"].split(":")
    assert name == call.session_id
    # Not the hour configured: a waiting call's relay lives until the host's last chance to
    # join (10 min) plus the held window (5 min) plus the reconnect grace (60 s).
    assert int(expiry) - int(context.clock.now().timestamp()) == 600 + 300 + 60
    expected = base64.b64encode(
        hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == expected
    assert body["ice_transport_policy"] == "all"
    # The host of the call gets servers too; someone else's host does not.
    host_view = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=call.host.headers
    )
    assert host_view.status_code == 200
    other = await calls.started()
    refused = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=bearer(other.guest_token)
    )
    assert refused.status_code == 404


async def relay_expiry(calls, call) -> int:
    response = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=call.guest_headers
    )
    assert response.status_code == 200, response.text
    return int(response.json()["ice_servers"][1]["username"].split(":")[0])


async def test_relay_credentials_end_with_the_paid_time_and_are_renewed_with_it(calls, context):
    async with calls.live() as (call, _host_ws, _guest_ws):
        now = int(context.clock.now().timestamp())
        # 5 minutes held, 60 s grace: not the hour configured.
        assert await relay_expiry(calls, call) == now + 300 + 60
        await calls.advance(240)  # the next window is held 75 s before the first ends
        assert (await calls.charges(call))["windows"][1]["state"] == "held"
        renewed = await relay_expiry(calls, call)
        assert renewed == int(context.clock.now().timestamp()) + 600 - 240 + 60
        assert (await calls.end(call, "guest")).status_code == 200
    after = await calls.client.get(
        f"/v1/sessions/{call.session_id}/ice-servers", headers=call.guest_headers
    )
    assert after.status_code == 409
    assert after.json()["error"]["code"] == "invalid_state"
