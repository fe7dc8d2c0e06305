"""What every response says about the server: redirects point at the public base URL whatever
`Host` the request named, the browser is told to keep to HTTPS (in production) and that only
this origin may use the camera and microphone; a real server does not name its software."""

from __future__ import annotations

import httpx
import pytest

from tests.support import free_port, start_server, stop_server
from vidivo.app import create_app
from vidivo.core.config import Environment
from vidivo.core.db import dispose

REDIRECTING = ["/", "/app/", "/v1/links/", "/c/abc123/", "/static", "/readyz/"]


@pytest.mark.parametrize("path", REDIRECTING)
async def test_redirects_lead_to_the_public_base_url_whatever_the_host_header(client, path):
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code in (301, 302, 303, 307, 308), response.text
    location = response.headers["location"]
    assert location.startswith("https://vidivo.test/"), location
    assert "evil.example" not in location


async def test_the_simulated_onboarding_redirect_leads_to_the_public_base_url(client, hosts):
    host = await hosts.create(connected=False)
    started = await client.post("/v1/host/payouts/onboarding", headers=host.headers)
    page = started.json()["url"].removeprefix("https://vidivo.test")
    completed = await client.post(page, headers={"Host": "evil.example"})
    assert completed.status_code == 303
    assert completed.headers["location"] == "https://vidivo.test/payouts/onboarding/return"


async def test_camera_and_microphone_are_allowed_to_this_origin_only(client):
    response = await client.get("/app")
    policy = response.headers["permissions-policy"]
    assert "camera=(self)" in policy and "microphone=(self)" in policy
    assert "geolocation=()" in policy
    assert "strict-transport-security" not in response.headers  # development: plain HTTP


async def test_production_answers_tell_browsers_to_keep_to_https(settings, clock):
    app = create_app(
        settings.model_copy(update={"environment": Environment.PRODUCTION}), clock=clock
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for path in ("/healthz", "/app", "/v1/links/nosuchcode"):
            response = await http.get(path)
            hsts = response.headers["strict-transport-security"]
            assert hsts == "max-age=31536000; includeSubDomains", path
    await dispose(app.state.context.engine)


def test_a_real_server_does_not_name_its_software(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base)
    try:
        response = httpx.get(f"{base}/healthz")
        assert response.status_code == 200
        assert "server" not in response.headers, response.headers
    finally:
        stop_server(server)
