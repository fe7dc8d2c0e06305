"""A start whose request stopped after the call's first writes (its process was stopped, or
the database went away mid-start) and whose client retries with the same `Idempotency-Key`:
the retry carries that call on, with one customer and one hold, or tells how it ended;
it is never told to "try again" for the key's 24 hours while the call sits unanswered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.security.test_concurrent_requests import settled
from tests.sessions.conftest import Call
from tests.sessions.test_start_idempotency import start
from vidivo.calls.models import BillingWindow, CallSession
from vidivo.payments.sim_models import SimPaymentIntent

# Each provider call takes this long, so a start can be stopped halfway through.
PROVIDER_MS = 200


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"simulated_latency_ms": PROVIDER_MS})


async def _the_call(context) -> CallSession | None:
    async with context.session_factory() as db:
        return await db.scalar(select(CallSession))


async def sent_until(
    context, request: Awaitable[httpx.Response], reached: Callable[[CallSession], bool]
) -> tuple[asyncio.Future[httpx.Response], CallSession]:
    """Send the start and wait, while it is still under way, until its call has come as
    far as `reached`: the request in flight, and the call as it stands."""
    sent = asyncio.ensure_future(request)
    for _ in range(200):
        call = await _the_call(context)
        if call is not None and reached(call):
            return sent, call
        assert not sent.done(), f"the start answered before it came that far: {sent.result().text}"
        await asyncio.sleep(0.01)
    raise AssertionError("the start never came that far")


async def _stopped_when(
    context, request: Awaitable[httpx.Response], reached: Callable[[CallSession], bool]
) -> str:
    """Send the start and stop its request (as a stopped process would) once its call has
    come as far as `reached`: the call's id."""
    sent, call = await sent_until(context, request, reached)
    sent.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sent
    return call.id


async def _holds_placed(context) -> int:
    async with context.session_factory() as db:
        return int(await db.scalar(select(func.count()).select_from(SimPaymentIntent)) or 0)


def _written(call: CallSession) -> bool:
    return True


def with_customer(call: CallSession) -> bool:
    """The card steps are done: the first hold comes next."""
    return call.customer_id is not None


@pytest.mark.parametrize("stopped", [_written, with_customer], ids=["before-card", "at-hold"])
async def test_a_retry_carries_on_the_call_a_stopped_start_left(calls, context, stopped):
    host = await calls.hosts.create()
    link = await calls.link(host)
    code = link["short_code"]
    session_id = await _stopped_when(context, start(calls, code, "attempt-1"), stopped)
    # The client retries once the first request has had its time to answer.
    await calls.advance(31)
    again = await start(calls, code, "attempt-1")
    assert again.status_code == 201, again.text
    assert again.json()["session"]["id"] == session_id
    assert again.json()["session"]["state"] == "waiting_for_host"
    call = Call(host, code, session_id, again.json()["guest_token"], again.json())
    assert (await calls.charges(call))["totals"]["held"] == "12.50"
    assert await _holds_placed(context) == 1
    # From now on the key answers as the retry did.
    third = await start(calls, code, "attempt-1")
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.json()["session"] == again.json()["session"]
    assert (await calls.end(call, "guest")).status_code == 200
    await settled(context)


async def test_a_retry_after_the_engine_gave_up_on_the_call_says_so_and_holds_nothing(
    calls, context
):
    host = await calls.hosts.create()
    link = await calls.link(host)
    code = link["short_code"]
    session_id = await _stopped_when(context, start(calls, code, "attempt-1"), with_customer)
    await calls.advance(6 * 60)  # past the 5 minutes a start may take: the engine ends it
    again = await start(calls, code, "attempt-1")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "invalid_state"
    assert "nothing was charged" in again.json()["error"]["message"]
    replayed = await start(calls, code, "attempt-1")
    assert replayed.json() == again.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
    async with context.session_factory() as db:
        call = await db.get(CallSession, session_id)
        assert call is not None and call.ended_at is not None
        windows: Any = await db.scalars(select(BillingWindow.state))
        assert "held" not in list(windows)
    # The link kept its use: a new start (a new key) goes ahead.
    fresh = await start(calls, code, "attempt-2")
    assert fresh.status_code == 201, fresh.text
    body = fresh.json()
    await calls.end(Call(host, code, body["session"]["id"], body["guest_token"], body))
    await settled(context)
