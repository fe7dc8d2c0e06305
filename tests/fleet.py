"""A deployment of real processes on loopback: `vidivo serve` and `vidivo worker` sharing one
PostgreSQL database and Redis, each process's output in a log file of the test's folder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, _recreate_postgres_database

REDIS_URL = os.environ.get("VIDIVO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Fleet:
    """The processes of one deployment, their logs in a folder."""

    def __init__(self, folder: Path, database_url: str, clock_speed: int) -> None:
        self.folder = folder
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
            "VIDIVO_DATABASE_URL": database_url,
            "VIDIVO_REDIS_URL": REDIS_URL,
            "VIDIVO_DATA_DIR": str(folder / "data"),
            "VIDIVO_WORKER": "false",
            "VIDIVO_CLOCK_SPEED": str(clock_speed),
            "VIDIVO_CLOCK_EPOCH": datetime.now(UTC).isoformat(),
            "VIDIVO_RECONNECT_GRACE_SECONDS": "60",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @classmethod
    def on_empty_database(cls, folder: Path, database_url: str, clock_speed: int) -> Fleet:
        """A deployment about to start on a freshly created, empty database."""
        _recreate_postgres_database(database_url)
        (folder / "data").mkdir()
        return cls(folder, database_url, clock_speed)

    def cli(self, *args: str) -> str:
        """`vidivo …` run to completion; its output, or the test fails with it."""
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def create_host(self, email: str, display_name: str) -> None:
        """A verified host whose payouts are ready (simulated payments)."""
        self.cli(
            "hosts", "create", "--email", email, "--password", PASSWORD,
            "--display-name", display_name, "--verified", "--connected",
        )  # fmt: skip

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vidivo.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, name: str, *args: str) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "vidivo.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{base} did not become ready")


async def next_of(ws, kind: str, within: float = 20) -> dict:
    deadline = time.monotonic() + within
    while True:
        event = await ws.receive_json(timeout=max(0.1, deadline - time.monotonic()))
        if event["type"] == kind:
            return event


async def keep_alive(*sockets) -> None:
    while True:
        await asyncio.sleep(5)
        for ws in sockets:
            await ws.send_json({"type": "ping"})
