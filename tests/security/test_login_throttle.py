"""Guessing a host's password: the guesser's address is slowed down more and more, the owner
logging in from anywhere else is not, and guessing from many addresses stays bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.conftest import PASSWORD

OWNER = "owner@example.com"


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "login_attempts_per_minute": 1000,  # the per-address cap has its own test
            "login_failures_before_backoff": 3,
            "login_backoff_base_seconds": 1,
            "login_failures_per_email": 6,
        }
    )


@asynccontextmanager
async def from_address(app, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def log_in(http: httpx.AsyncClient, password: str) -> httpx.Response:
    return await http.post("/v1/auth/token", json={"email": OWNER, "password": password})


@pytest.fixture
async def owner(hosts):
    return await hosts.create(email=OWNER)


async def test_an_attacker_failing_from_one_address_does_not_lock_out_the_owner(app, owner):
    async with from_address(app, "192.0.2.66") as attacker:
        for _ in range(10):
            await log_in(attacker, "wrong password!")
        assert (await log_in(attacker, PASSWORD)).status_code == 429
    async with from_address(app, "198.51.100.5") as owner_device:
        assert (await log_in(owner_device, PASSWORD)).status_code == 200


async def test_the_guessing_address_waits_longer_after_every_failure(app, owner):
    waits = []
    async with from_address(app, "192.0.2.66") as attacker:
        for _ in range(3):
            assert (await log_in(attacker, "wrong password!")).status_code == 401
        for _ in range(3):
            refused = await log_in(attacker, "wrong password!")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            wait = int(refused.headers["Retry-After"])
            waits.append(wait)
            await asyncio.sleep(wait + 0.1)
            assert (await log_in(attacker, "wrong password!")).status_code == 401
    assert waits == [1, 2, 4]


async def test_guessing_from_many_addresses_is_bounded_and_the_owner_still_gets_in(app, owner):
    # 2 addresses x 3 free failures reach the account's ceiling of 6 ...
    for n in range(2):
        async with from_address(app, f"192.0.2.{n}") as attacker:
            for _ in range(3):
                assert (await log_in(attacker, "wrong password!")).status_code == 401
    # ... after which every new address gets one guess before it must wait.
    for n in range(10, 15):
        async with from_address(app, f"192.0.2.{n}") as attacker:
            assert (await log_in(attacker, "wrong password!")).status_code == 401
            assert (await log_in(attacker, "wrong password!")).status_code == 429
    async with from_address(app, "198.51.100.5") as owner_device:
        assert (await log_in(owner_device, PASSWORD)).status_code == 200


async def test_a_login_forgets_the_failures_of_its_address(app, owner):
    async with from_address(app, "198.51.100.5") as owner_device:
        for _ in range(2):
            assert (await log_in(owner_device, "typo password")).status_code == 401
        assert (await log_in(owner_device, PASSWORD)).status_code == 200
        for _ in range(2):
            assert (await log_in(owner_device, "typo password")).status_code == 401
        assert (await log_in(owner_device, PASSWORD)).status_code == 200
