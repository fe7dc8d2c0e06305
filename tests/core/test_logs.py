"""`VIDIVO_LOG_FORMAT=json`: one JSON object a line from a real `vidivo serve` and
`vidivo worker`, uvicorn's lines included, each tied to its request and call session."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support import demo_credentials, free_port, start_server, stop_server
from vidivo.core.logs import JsonLines, LogContext, logged_call_session

CONSOLE_LINES = ("Vidivo is running at ", "API reference: ", "Demo host: ", "  (shown this once")


def _json_lines(output: str) -> list[dict[str, Any]]:
    """Every log line parsed; only the console greeting `serve` prints is not JSON."""
    lines = [line for line in output.splitlines() if not line.startswith(CONSOLE_LINES)]
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
        assert datetime.fromisoformat(entry["timestamp"]).utcoffset() == UTC.utcoffset(None)
    return entries


async def _start_a_call(
    http: httpx.AsyncClient, output: str
) -> tuple[str, httpx.Response, httpx.Response]:
    """A guest's call on the demo host's link, accepted: its id, the start and accept
    responses."""
    email, password = demo_credentials(output)
    signed_in = await http.post("/v1/auth/token", json={"email": email, "password": password})
    host = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    link = await http.post(
        "/v1/links", headers=host, json={"rate_per_minute": "1.00", "window_size_minutes": 2}
    )
    assert link.status_code == 201, link.text
    started = await http.post(
        f"/v1/links/{link.json()['link']['short_code']}/sessions",
        json={
            "guest_name": "Robin",
            "guest_email": "r@example.com",
            "payment_method_id": "pm_card_visa",
        },
    )
    assert started.status_code == 201, started.text
    session_id = started.json()["session"]["id"]
    accepted = await http.post(f"/v1/sessions/{session_id}/accept", headers=host)
    assert accepted.status_code == 200, accepted.text
    return session_id, started, accepted


async def test_json_log_lines_name_their_request_and_call_and_redact_tokens(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base, {"VIDIVO_LOG_FORMAT": "json"})
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            missing = await http.get("/nowhere", params={"token": "secret-token-value"})
            traced = await http.get("/readyz", headers={"X-Request-Id": "trace-42.a"})
            session_id, started, accepted = await _start_a_call(http, server.output())
    finally:
        output = stop_server(server)
    entries = _json_lines(output)
    assert "secret-token-value" not in output

    missing_id = missing.headers["x-request-id"]
    (access,) = [e for e in entries if e.get("request_id") == missing_id]
    assert access["logger"] == "uvicorn.access"
    assert "GET /nowhere?token=[redacted] HTTP/1.1" in access["message"]
    assert missing.status_code == 404

    assert traced.headers["x-request-id"] == "trace-42.a"
    assert [e["logger"] for e in entries if e.get("request_id") == "trace-42.a"] == [
        "uvicorn.access"
    ]

    # The first hold, placed as the guest starts the call (no call id in that URL): the
    # engine names the call it is advancing.
    (hold,) = [e for e in entries if e["logger"] == "vidivo.billing" and "hold" in e["message"]]
    assert hold["session_id"] == session_id
    assert hold["request_id"] == started.headers["x-request-id"]
    assert hold["level"] == "INFO"
    # A call route names its call on every line of the request, uvicorn's included.
    (accept_line,) = [e for e in entries if e.get("request_id") == accepted.headers["x-request-id"]]
    assert accept_line["logger"] == "uvicorn.access"
    assert accept_line["session_id"] == session_id
    assert any(e["logger"] == "uvicorn.error" for e in entries)  # uvicorn's own lines too


def test_the_worker_logs_json_lines_too(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    stop_server(start_server(data, base))  # a migrated database
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
        "VIDIVO_DATA_DIR": str(data),
        "VIDIVO_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vidivo.cli", "worker"], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while "started" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    (started,) = [e for e in _json_lines(log_path.read_text()) if "started" in e["message"]]
    assert started["logger"] == "vidivo.worker"
    assert started["level"] == "INFO"


def test_a_json_line_carries_the_exception_and_the_call_session():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(LogContext())
    logger = logging.getLogger("vidivo.test.json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logged_call_session("01SESSION"):
            try:
                raise RuntimeError("the provider went away")
            except RuntimeError:
                logger.exception("advancing failed")
        logger.warning("outside any call")
    finally:
        logger.removeHandler(handler)
    failed, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert failed["message"] == "advancing failed"
    assert failed["level"] == "ERROR"
    assert failed["session_id"] == "01SESSION"
    assert "Traceback" in failed["exception"]
    assert "RuntimeError: the provider went away" in failed["exception"]
    assert "session_id" not in outside
    assert "exception" not in outside
    assert "request_id" not in outside
