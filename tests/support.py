"""Real `vidivo serve` processes on loopback, for tests of what a user runs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(subprocess.Popen[str]):
    """A `vidivo serve` process whose output goes to a file (a pipe nobody reads fills up and
    blocks the server's logging)."""

    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text()


def start_server(data_dir: Path, base: str, extra_env: dict[str, str] | None = None) -> Server:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
        "VIDIVO_DATA_DIR": str(data_dir),
        "VIDIVO_PUBLIC_BASE_URL": base,
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        process = Server(
            [sys.executable, "-m", "vidivo.cli", "serve", "--port", base.rsplit(":", 1)[1]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    process.log_path = log_path
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    pytest.fail(f"vidivo serve did not become ready in 60 s:\n{process.output()}")


def stop_server(process: Server) -> str:
    """Stop the server; what it printed."""
    process.terminate()
    process.wait(timeout=20)
    return process.output()


def demo_credentials(output: str) -> tuple[str, str]:
    match = re.search(r"Demo host: (\S+) / (\S+)", output)
    assert match, output
    return match.group(1), match.group(2)
