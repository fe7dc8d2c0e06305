"""Real browsers against a real `vidivo serve`: Debian's chromium driven by Playwright, media
relayed by a real coturn on loopback (without TURN, Chromium would send media over the
machine's network interface).

These tests fail, never skip, when chromium or turnserver is missing: `.ci/run` installs both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.support import Server, free_port, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
TURNSERVER = "/usr/bin/turnserver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Turn:
    url: str
    secret: str


@pytest.fixture(scope="session")
def turn() -> Iterator[Turn]:
    if not Path(TURNSERVER).exists():
        pytest.fail(f"{TURNSERVER} is missing: apt-get install coturn (.ci/run does)")
    port, secret = free_port(), secrets.token_hex(16)
    process = subprocess.Popen(
        [
            TURNSERVER,
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=vidivo.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--min-port=49200",
            "--max-port=49300",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    if process.poll() is not None:
        pytest.fail(f"turnserver exited at once with code {process.returncode}")
    yield Turn(url=f"turn:127.0.0.1:{port}?transport=udp", secret=secret)
    process.terminate()
    process.wait(timeout=10)


@dataclass
class App:
    base: str
    server: Server
    data_dir: Path

    def advance(self, seconds: int) -> dict[str, Any]:
        response = httpx.post(f"{self.base}/v1/test/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text
        return response.json()

    def last_verification_token(self) -> str:
        """From the newest mail in the development mailbox (the log never shows tokens)."""
        deadline = time.monotonic() + 5  # the mail is written just after the sign-up answers
        while not (mails := sorted((self.data_dir / "mail").glob("*.eml"))):
            assert time.monotonic() < deadline, "no verification email in the development mailbox"
            time.sleep(0.1)
        lines = [x for x in mails[-1].read_text().splitlines() if "Verification token: " in x]
        assert lines, f"no verification token in {mails[-1]}"
        return lines[-1].split("Verification token: ", 1)[1].strip()


@pytest.fixture
def app_server(tmp_path: Path, turn: Turn) -> Iterator[App]:
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(
        tmp_path / "data",
        base,
        {
            "VIDIVO_TEST_CLOCK": "true",
            "VIDIVO_TURN_URLS": turn.url,
            "VIDIVO_TURN_SECRET": turn.secret,
            "VIDIVO_ICE_TRANSPORT_POLICY": "relay",
        },
    )
    yield App(base=base, server=server, data_dir=tmp_path / "data")
    stop_server(server)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        await browser.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:
    """Two people: the host and the guest, each in their own browser profile."""
    made = [
        await browser.new_context(
            permissions=["camera", "microphone"], viewport={"width": 420, "height": 860}
        )
        for _ in range(2)
    ]
    yield made[0], made[1]
    for context in made:
        await context.close()


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """Under docs/screenshots when VIDIVO_UPDATE_SCREENSHOTS=1, else a scratch folder."""
    folder = SCREENSHOTS if os.environ.get("VIDIVO_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"
