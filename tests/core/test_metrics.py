"""`/metrics`: request latency by route template, the guard in each mode, the worker's own
port, and the hub's publish failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.scrape import METRICS_TOKEN, Scrape, scrape
from tests.support import free_port, start_server, stop_server
from vidivo.app import create_app
from vidivo.core.config import MetricsMode
from vidivo.core.db import dispose

REQUESTS = "vidivo_http_request_duration_seconds_count"


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={"metrics": MetricsMode.TOKEN, "metrics_token": METRICS_TOKEN}
    )


async def test_a_request_is_timed_under_its_route_template_and_status(client):
    before = await scrape(client)
    assert (await client.get("/v1/links/NoSuchCode1")).status_code == 404  # the fast path
    assert (await client.get("/v1/sessions/01JUNKJUNKJUNKJUNKJUNKJUNK")).status_code == 401
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/page/xyz")).status_code == 404
    after = await scrape(client)

    def moved(route: str, status: str) -> float:
        return after.value(REQUESTS, route=route, status=status) - before.value(
            REQUESTS, route=route, status=status
        )

    assert moved("/v1/links/{short_code}", "404") == 1
    assert moved("/v1/sessions/{session_id}", "401") == 1
    assert moved("/healthz", "200") == 1
    assert moved("unmatched", "404") == 1
    routes = after.label_values(REQUESTS, "route")
    assert not any("NoSuchCode1" in r or "JUNK" in r or "xyz" in r for r in routes), routes


async def test_metrics_refuse_a_missing_or_wrong_token_in_the_api_error_shape(client):
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": METRICS_TOKEN}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"
    accepted = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert accepted.status_code == 200
    assert accepted.headers["content-type"].startswith("text/plain")
    assert "vidivo_http_request_duration_seconds" in accepted.text


async def test_metrics_are_not_served_when_off(settings):
    app = create_app(settings.model_copy(update={"metrics": MetricsMode.OFF}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await client.get("/metrics", headers=headers)).status_code == 404
    await dispose(app.state.context.engine)


async def test_a_failed_redis_publish_is_counted(settings, client):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(settings.model_copy(update={"redis_url": dead_redis}))
    before = await scrape(client)
    await app.state.context.hub.publish("some-session", {"type": "ping"})
    after = await scrape(client)
    failures = "vidivo_hub_publish_failures_total"
    assert after.value(failures) - before.value(failures) == 1
    await app.state.context.hub.close()
    await dispose(app.state.context.engine)


def test_listen_mode_serves_metrics_on_their_own_address_only(tmp_path):
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(
        tmp_path / "data",
        base,
        {"VIDIVO_METRICS": "listen", "VIDIVO_METRICS_PORT": str(metrics_port)},
    )
    try:
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        samples = Scrape(scraped.text)
        assert samples.value(REQUESTS, route="/healthz", status="200") >= 1
        assert samples.value("vidivo_calls_open", state="live") == 0  # read from the database
        assert "vidivo_calls_open" in scraped.text
    finally:
        stop_server(server)


def test_a_worker_serves_its_metrics_on_its_own_port_behind_the_token(database_url, tmp_path):
    metrics_port = free_port()
    env = {
        "VIDIVO_DATABASE_URL": database_url,
        "VIDIVO_DATA_DIR": str(tmp_path),
        "VIDIVO_METRICS": "token",
        "VIDIVO_METRICS_TOKEN": METRICS_TOKEN,
        "VIDIVO_METRICS_PORT": str(metrics_port),
    }
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vidivo.cli", "worker", "--interval", "0.2"],
            env={**_without_vidivo_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        scraped = _first_answer(url, {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200, (tmp_path / "worker.log").read_text()
        assert Scrape(scraped.text).value("vidivo_worker_sessions_due") == 0
        assert "vidivo_billing_provider_calls_total" in scraped.text
        refused = httpx.get(url)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def _first_answer(url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _without_vidivo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")}
