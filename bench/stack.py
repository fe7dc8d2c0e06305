"""Starting what a benchmark measures: a fresh PostgreSQL database, `vidivo serve` processes,
`vidivo` CLI calls, the bare baseline."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_DB_NAME", "vidivo_bench")
DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench password 123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def recreate_database() -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()


class Stack:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
            "VIDIVO_DATABASE_URL": DSN,
            "VIDIVO_DATA_DIR": str(folder / "data"),
            "VIDIVO_WORKER": "false",
            "VIDIVO_LOG_LEVEL": "WARNING",
            # Load comes from one address: keep the login and sign-up limits out of the way.
            "VIDIVO_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vidivo.cli", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"vidivo {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _spawn(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def serve(self, name: str = "api", **extra: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        process = self._spawn(
            [sys.executable, "-m", "vidivo.cli", "serve", "--port", str(port)],
            {**self.env, **extra},
            name,
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz")
        return base, process

    def baseline(self) -> str:
        port = free_port()
        env = {**self.env, "BENCH_DSN": DSN, "BENCH_PORT": str(port)}
        self._spawn([sys.executable, "-m", "bench.baseline"], env, "baseline")
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/v1/links/none", accept_404=True)
        return base

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(url: str, accept_404: bool = False) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=1).status_code
            if status == 200 or (accept_404 and status == 404):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 60 s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
