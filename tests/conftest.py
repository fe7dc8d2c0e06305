"""Test harness: a real database (SQLite by default, PostgreSQL with VIDIVO_TEST_DATABASE_URL),
migrated once per run, emptied after every test; the app driven over HTTP with a test clock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.turns import Turns
from vidivo.app import AppContext, create_app
from vidivo.auth import passwords
from vidivo.core.clock import TestClock
from vidivo.core.config import Settings
from vidivo.core.db import Base, dispose
from vidivo.mail.service import latest_email_to
from vidivo.migrate import upgrade_to_head
from vidivo.models import load_all_models

load_all_models()
START = datetime(2026, 3, 15, 10, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

# `pytest -m quick`: the tests that need neither the machine's PostgreSQL and Redis nor
# minutes of their own. Left out: the multi-process tests that use those services, and the
# long runs (crash and fault injection, fuzzing, soak).
NEEDS_SERVICES_OR_MINUTES = (
    "tests/scale/",
    "tests/soak/",
    "tests/faults/",
    "tests/contract/",
    "tests/sessions/test_crash_soak.py",
    "tests/sessions/test_crash_safety.py",
)
# Tests that start several processes of the app and run their time faster than real, or stop
# PostgreSQL: with `-n` (pytest-xdist) each runs with no other test beside it (tests/turns.py).
RUNS_ALONE = (
    "tests/scale/test_multi_instance.py",
    "tests/soak/",
    "tests/faults/test_database_restart.py",
)
# The longest runs come first, so that with `-n` no process is left running one at the end.
LONGEST = (
    "tests/sessions/test_crash_soak.py",
    "tests/contract/test_openapi_fuzz.py",
    "tests/sessions/test_crash_safety.py",
)
_TESTS_ROOT = Path(__file__).resolve().parent.parent
_TURNS = Turns.of_this_run()


def _path_of(item: pytest.Item) -> str:
    return item.path.resolve().relative_to(_TESTS_ROOT).as_posix()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = _path_of(item)
        if not path.startswith(NEEDS_SERVICES_OR_MINUTES) and not item.get_closest_marker(
            "browser"
        ):
            item.add_marker(pytest.mark.quick)
    items.sort(key=lambda item: not _path_of(item).startswith(LONGEST))  # a stable sort


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    if _TURNS is None:
        return (yield)
    with _TURNS.alone() if _path_of(item).startswith(RUNS_ALONE) else _TURNS.beside_others():
        return (yield)


def _recreate_postgres_database(url: str) -> None:
    """Drop and create the test database; fail loudly if PostgreSQL does not answer."""
    import asyncpg

    parsed = make_url(url)
    name = parsed.database
    assert name and name.replace("_", "").isalnum(), f"unsafe test database name {name!r}"

    async def recreate() -> None:
        admin = await asyncpg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            database="postgres",
            timeout=10,
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(recreate())


def beside(url: str, suffix: str) -> str:
    """The URL of the database on the same PostgreSQL server named `url`'s with `_suffix`."""
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{suffix}").render_as_string(hide_password=False)


def suite_postgres_url() -> str | None:
    """This test process's PostgreSQL database: VIDIVO_TEST_DATABASE_URL's, with the name of
    the pytest-xdist worker appended when the suite runs in several processes (`-n`)."""
    url = os.environ.get("VIDIVO_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return beside(url, worker) if url and worker else url


@pytest.fixture(scope="session", autouse=True)
def cheapest_password_hashing() -> Iterator[None]:
    """Argon2id at its RFC 9106 cost takes ~160 ms a hash on a 2-core machine, and the suite
    signs up and logs in thousands of hosts: in the test process (not in the servers tests
    start), the same hasher runs at argon2-cffi's cheapest parameters.
    tests/auth/test_password_cost.py checks the cost the app itself uses."""
    cheapest = PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheapest)
        patch.setattr(passwords, "_DUMMY_HASH", cheapest.hash("vidivo-timing-equaliser"))
        yield


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vidivo-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> Iterator[str]:
    url = suite_postgres_url() or f"sqlite:///{data_dir / 'test.sqlite3'}"
    if url.startswith("postgres"):
        _recreate_postgres_database(url)
    upgrade_to_head(url)
    yield url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        public_base_url="https://vidivo.test",
    )


@pytest.fixture
def clock() -> TestClock:
    return TestClock(START)


@pytest.fixture
async def app(settings: Settings, clock: TestClock) -> AsyncIterator[Any]:
    application = create_app(settings, clock=clock)
    yield application
    context: AppContext = application.state.context
    async with context.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(text(f"DELETE FROM {table.name}"))
    await dispose(context.engine)


@pytest.fixture
def context(app: Any) -> AppContext:
    ctx: AppContext = app.state.context
    return ctx


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Host:
    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


class Hosts:
    """Builds hosts the way users do: sign up, read the emailed token, verify, log in."""

    def __init__(self, client: httpx.AsyncClient, context: AppContext) -> None:
        self.client = client
        self.context = context
        self._count = 0

    async def verification_token(self, email: str) -> str:
        async with self.context.session_factory() as db:
            mail = await latest_email_to(db, email)
        assert mail is not None, f"no email was sent to {email}"
        line = next(x for x in mail.body.splitlines() if x.startswith("Verification token: "))
        return line.removeprefix("Verification token: ")

    async def login(self, email: str, password: str = PASSWORD) -> tuple[str, str]:
        response = await self.client.post(
            "/v1/auth/token", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["access_token"], body["refresh_token"]

    async def create(
        self,
        *,
        verified: bool = True,
        connected: bool = True,
        display_name: str = "Jane Smith",
        email: str | None = None,
    ) -> Host:
        self._count += 1
        email = email or f"host{self._count}@example.com"
        response = await self.client.post(
            "/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "display_name": display_name},
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["user"]["id"]
        if verified:
            token = await self.verification_token(email)
            verify = await self.client.post("/v1/auth/verify-email", json={"token": token})
            assert verify.status_code == 200, verify.text
        access, refresh = await self.login(email)
        host = Host(user_id, email, access, refresh)
        if connected:
            await self.complete_payout_onboarding(host)
        return host

    async def complete_payout_onboarding(self, host: Host) -> None:
        """Start onboarding, then click through the simulated provider's page."""
        started = await self.client.post("/v1/host/payouts/onboarding", headers=host.headers)
        assert started.status_code == 200, started.text
        page = started.json()["url"].removeprefix(self.context.settings.public_base_url)
        completed = await self.client.post(page)
        assert completed.status_code == 303, completed.text


@pytest.fixture
def hosts(client: httpx.AsyncClient, context: AppContext) -> Hosts:
    return Hosts(client, context)
