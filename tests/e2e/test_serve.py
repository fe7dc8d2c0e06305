"""The README's run command: a real `vidivo serve` process on a fresh data directory."""

from __future__ import annotations

import httpx

from tests.support import demo_credentials, free_port, start_server, stop_server


def test_serve_creates_its_data_prints_a_demo_host_and_serves_links(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    data_dir = tmp_path / "data"
    first = start_server(data_dir, base)
    output = stop_server(first)
    assert f"Vidivo is running at {base}" in output
    assert (data_dir / "vidivo.sqlite3").exists()
    key = data_dir / "jwt-signing-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    email, password = demo_credentials(output)

    # Started again on the same data: the same key, no second demo host, the login works.
    second = start_server(data_dir, base)
    try:
        token = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = httpx.post(
            f"{base}/v1/links",
            headers=headers,
            json={"rate_per_minute": "2.50", "window_size_minutes": 10, "max_uses": 1},
        )
        assert created.status_code == 201, created.text
        link = created.json()["link"]
        assert link["url"] == f"{base}/c/{link['short_code']}"
        public = httpx.get(f"{base}/v1/links/{link['short_code']}")
        assert public.json()["link"]["host"]["display_name"] == "Demo Host"
    finally:
        output = stop_server(second)
    assert "Demo host:" not in output
