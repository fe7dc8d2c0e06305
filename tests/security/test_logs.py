"""Bearer tokens travel in query strings where browsers give no choice (signaling sockets,
e-mail verification links); the server's log lines never show them."""

from __future__ import annotations

import httpx
from httpx_ws import aconnect_ws

from tests.support import demo_credentials, free_port, start_server, stop_server


async def test_tokens_in_query_strings_never_reach_the_log(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base)
    try:
        email, password = demo_credentials(server.output())
        async with httpx.AsyncClient(base_url=base) as http:
            signed_in = await http.post(
                "/v1/auth/token", json={"email": email, "password": password}
            )
            token = signed_in.json()["access_token"]
            ws_base = base.replace("http", "ws", 1)
            async with aconnect_ws(f"{ws_base}/v1/host/events?token={token}", http) as ws:
                await ws.send_json({"type": "ping"})
                assert (await ws.receive_json(timeout=5))["type"] == "pong"
            page = await http.get("/app", params={"verify": "secret-verification-token"})
            assert page.status_code == 200
    finally:
        log = stop_server(server)
    assert "/v1/host/events?token=[redacted]" in log
    assert "/app?verify=[redacted]" in log
    assert token not in log
    assert token.split(".")[2] not in log  # not even the signature
    assert "secret-verification-token" not in log
