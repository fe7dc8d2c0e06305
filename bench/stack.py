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
# Configurable, so two benchmarks can run side by side on one PostgreSQL server.
DB_NAME = os.environ.get("BENCH_DB_NAME", "vidivo_bench")
DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench password 123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User and system CPU a process has used so far (and its children that ended)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU used so far by the local PostgreSQL server: its live processes, and the backends
    that ended (counted in the postmaster's children)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            parent = int(_stat(int(entry.name))[1])
            is_postmaster = Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
            total += cpu_seconds(int(entry.name), with_children=is_postmaster)
        except (FileNotFoundError, ProcessLookupError):  # a backend that just ended
            continue
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds all cores spent busy and idle so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    busy = sum(fields[:8]) - idle  # up to steal; guest time is already in user
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, idle / tick


async def _admin(*statements: str) -> None:
    """Statements run one by one on the server's maintenance database."""
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


async def recreate_database() -> None:
    await _admin(
        f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)', f'CREATE DATABASE "{DB_NAME}"'
    )


async def copy_database(suffix: str) -> str:
    """A fresh copy of the `DB_NAME` database (PostgreSQL copies the files: no rows are
    re-inserted), named with `suffix`; its DSN. The source must have no connections."""
    name = f"{DB_NAME}_{suffix}"
    await _admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}" TEMPLATE "{DB_NAME}"',
    )
    return DSN.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(database_url: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}"')


class Stack:
    """One Vidivo deployment under test: on PostgreSQL (`DSN`), or with `sqlite=True` the
    embedded default, one SQLite file in the scratch folder."""

    def __init__(self, folder: Path, *, sqlite: bool = False) -> None:
        self.folder = folder
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.sqlite_file = folder / "bench.sqlite3" if sqlite else None
        self.database_url = f"sqlite:///{self.sqlite_file}" if self.sqlite_file else DSN
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
            "VIDIVO_DATABASE_URL": self.database_url,
            "VIDIVO_DATA_DIR": str(folder / "data"),
            "VIDIVO_WORKER": "false",
            "VIDIVO_LOG_LEVEL": "WARNING",
            # Load comes from one address: keep the login and sign-up limits out of the way.
            "VIDIVO_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
            # One token per host lasts the whole HTTP section.
            "VIDIVO_ACCESS_TOKEN_TTL_SECONDS": "3600",
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
        env = {**self.env, "BENCH_DSN": self.database_url, "BENCH_PORT": str(port)}
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
    deadline = time.monotonic() + 240  # a loaded machine starts slowly
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=1).status_code
            if status == 200 or (accept_404 and status == 404):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 240 s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
