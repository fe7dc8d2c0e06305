"""`vidivo serve` as a newcomer runs it: a real process on a real port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import demo_credentials, free_port

BANNER = "Vidivo is running at"


class Serve:
    def __init__(self, tmp_path: Path, port: int) -> None:
        self.stdout_path = tmp_path / "serve.out"
        self.stderr_path = tmp_path / "serve.err"
        # No VIDIVO_PUBLIC_BASE_URL: the defaults, as on a fresh clone.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")}
        env["VIDIVO_DATA_DIR"] = str(tmp_path / "data")
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vidivo.cli", "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=err,
                text=True,
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_for_banner(self) -> None:
        deadline = time.monotonic() + 60
        while BANNER not in self.stdout():
            assert self.process.poll() is None, self.stdout() + self.stderr()
            assert time.monotonic() < deadline, self.stdout() + self.stderr()
            time.sleep(0.01)

    def wait_until_ready(self, base: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(self.stdout() + self.stderr())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Serve, int]]:
    port = free_port()
    server = Serve(tmp_path, port)
    yield server, port
    server.stop()


def test_the_banner_comes_once_the_server_answers(serve: tuple[Serve, int]) -> None:
    server, port = serve
    server.wait_for_banner()
    # No retry: the moment the banner is out, the address it names answers.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert f"{BANNER} http://127.0.0.1:{port}" in server.stdout()


def test_links_point_at_the_served_port_without_a_public_url(serve: tuple[Serve, int]) -> None:
    server, port = serve
    base = f"http://127.0.0.1:{port}"
    server.wait_for_banner()
    server.wait_until_ready(base)
    email, password = demo_credentials(server.stdout())
    login = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    created = httpx.post(
        f"{base}/v1/links",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        json={"rate_per_minute": "2.50", "window_size_minutes": 10},
    )
    assert created.status_code == 201, created.text
    assert created.json()["link"]["url"].startswith(f"{base}/c/")
    assert f"(public URL {base})" in server.stdout()


def test_a_busy_port_is_one_clear_line_and_a_failed_exit(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = Serve(tmp_path, port)
        try:
            code = server.process.wait(timeout=60)
        finally:
            server.stop()
    assert code != 0
    assert BANNER not in server.stdout()
    lines = server.stderr().strip().splitlines()
    assert len(lines) == 1, server.stderr()
    assert str(port) in lines[0] and "--port" in lines[0]
    assert "Traceback" not in server.stderr()


def test_a_public_url_given_by_the_operator_wins_over_the_served_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vidivo.core.config import Settings

    monkeypatch.delenv("VIDIVO_PUBLIC_BASE_URL", raising=False)

    given = Settings(public_base_url="https://calls.example.com/")
    assert given.served_at("127.0.0.1", 8001).public_base_url == "https://calls.example.com"
    default = Settings()
    assert default.served_at("0.0.0.0", 8001).public_base_url == "http://127.0.0.1:8001"
    assert default.served_at("::1", 8002).public_base_url == "http://[::1]:8002"
