"""A link that stops giving uses while a start's first hold is placed: its host switched it
off, it expired, or another guest took its last use. The guest is told what opening the link
now says, the hold is released, and the call records why it did not start, as the host's
history shows it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from tests.security.test_concurrent_requests import settled
from tests.sessions.test_start_resumed import sent_until, with_customer
from vidivo.links.models import Link

# Each provider call takes this long: time enough to change the link during the hold.
PROVIDER_MS = 200


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"simulated_latency_ms": PROVIDER_MS})


async def _switch_off(calls, host, link, clock, context) -> None:
    response = await calls.client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    assert response.status_code == 204, response.text


async def _expire(calls, host, link, clock, context) -> None:
    clock.advance(120)  # the link expires 60 s after the clock's start


async def _take_last_use(calls, host, link, clock, context) -> None:
    # Another guest's start took the one use while this one's hold was placed.
    async with context.session_factory() as db:
        await db.execute(update(Link).where(Link.id == link["id"]).values(use_count=1))
        await db.commit()


Change = Callable[..., Awaitable[None]]


@pytest.mark.parametrize(
    ("change", "status", "code", "end_reason"),
    [
        (_switch_off, 404, "not_found", "link_deactivated"),
        (_expire, 410, "link_expired", "link_expired"),
        (_take_last_use, 410, "link_exhausted", "link_exhausted"),
    ],
    ids=["switched-off", "expired", "used-up"],
)
async def test_a_link_gone_during_the_first_hold_ends_the_call_for_that_reason(
    calls, clock, context, change: Change, status: int, code: str, end_reason: str
):
    host = await calls.hosts.create()
    link = await calls.link(host, max_uses=1, expires_at="2026-03-15T10:01:00Z")
    sent, _ = await sent_until(context, calls.start(link["short_code"]), with_customer)
    await change(calls, host, link, clock, context)

    answer = await sent
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    listing: Any = (await calls.client.get("/v1/sessions", headers=host.headers)).json()
    [session] = listing["sessions"]
    assert session["end_reason"] == end_reason, session
    assert session["went_live_at"] is None
    charges = await calls.client.get(f"/v1/sessions/{session['id']}/charges", headers=host.headers)
    assert charges.json()["totals"]["captured"] == "0.00"
    await settled(context)  # the hold is released
