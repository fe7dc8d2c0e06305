"""Suspending a host: every token and login refused, its calls ended and settled, and a
statement of what it is still owed in its mailbox; the same through the CLI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import vidivo.app as composition
from tests.conftest import PASSWORD, Host, bearer
from tests.sessions.conftest import Call, Calls
from tests.sessions.test_signaling import close_code, next_of
from vidivo.auth.models import LoginSession, User
from vidivo.calls.ledger import audit, totals
from vidivo.calls.models import CallSession, LedgerKind
from vidivo.calls.suspension import Suspension, suspend_host
from vidivo.cli import app as cli
from vidivo.links.models import Link
from vidivo.mail.models import OutboxEmail
from vidivo.mail.service import latest_email_to

STATEMENT_SUBJECT = "Your Vidivo account is suspended"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"test_clock": True})


@pytest.fixture
def calls(client, hosts, app) -> Calls:
    return Calls(client, hosts, app)


async def suspend(context, host: Host) -> Suspension:
    return await suspend_host(
        context.session_factory,
        context.clock,
        context.billing,
        context.public_links,
        context.hub,
        host.id,
    )


def assert_suspended_answer(response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "account_suspended"


async def ledger_of(context, call: Call) -> dict[LedgerKind, int]:
    async with context.session_factory() as db:
        return await totals(db, call.session_id)


async def assert_audit_clean(context) -> None:
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_suspended_hosts_tokens_and_logins_are_refused(client, hosts, context):
    host = await hosts.create()
    await suspend(context, host)
    for path in ("/v1/me", "/v1/links", "/v1/sessions", "/v1/earnings", "/v1/host/payouts"):
        assert_suspended_answer(await client.get(path, headers=host.headers))
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert_suspended_answer(refreshed)
    assert_suspended_answer(
        await client.post("/v1/auth/token", json={"email": host.email, "password": PASSWORD})
    )
    # Without the password nobody learns that the account exists, suspended or not.
    wrong = await client.post("/v1/auth/token", json={"email": host.email, "password": "x" * 12})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    async with context.session_factory() as db:
        logins = list(await db.scalars(select(LoginSession).where(LoginSession.user_id == host.id)))
    assert logins and all(login.revoked_reason == "suspended" for login in logins)


async def test_a_suspended_hosts_dashboard_feed_is_refused(hosts, context, app):
    host = await hosts.create()
    await suspend(context, host)
    assert await close_code(app, f"/v1/host/events?token={host.access_token}") == 4403


async def test_a_waiting_call_is_declined_with_its_hold_released(calls, client, context):
    call = await calls.started()
    done = await suspend(context, call.host)
    assert (done.declined_calls, done.ended_calls) == (1, 0)
    accept = await client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    assert_suspended_answer(accept)
    session = await calls.session(call)
    assert session["state"] == "declined"
    assert session["end_reason"] == "host_suspended"
    charges = (
        await client.get(f"/v1/sessions/{call.session_id}/charges", headers=call.guest_headers)
    ).json()
    assert [w["state"] for w in charges["windows"]] == ["released"]
    assert charges["totals"]["captured"] == "0.00"
    money = await ledger_of(context, call)
    assert money[LedgerKind.HOLD] == money[LedgerKind.RELEASE] == 1250
    assert money[LedgerKind.CAPTURE] == 0
    async with context.session_factory() as db:
        link = await db.scalar(select(Link).where(Link.short_code == call.short_code))
    assert link is not None and link.use_count == 0  # the call never happened
    await assert_audit_clean(context)


async def test_a_live_call_ends_at_once_with_the_minutes_used_captured(calls, client, context):
    async with calls.live() as (call, _host_ws, guest_ws):
        await calls.advance(150)  # 2½ minutes: 3 started minutes at 2.50
        done = await suspend(context, call.host)
        ended = await next_of(guest_ws, "ended")
    assert (done.declined_calls, done.ended_calls) == (0, 1)
    assert ended["reason"] == "host_suspended"
    assert ended["total"] == "7.50"
    session = await calls.session(call)
    assert session["state"] == "ended"
    receipt = (
        await client.get(f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers)
    ).json()["receipt"]
    assert (receipt["billed_minutes"], receipt["total_charged"]) == (3, "7.50")
    charges = (
        await client.get(f"/v1/sessions/{call.session_id}/charges", headers=call.guest_headers)
    ).json()
    assert charges["totals"]["captured"] == "7.50"
    await calls.advance(600)  # nothing more is billed later
    assert (await ledger_of(context, call))[LedgerKind.CAPTURE] == 750
    await assert_audit_clean(context)


async def test_refunds_onboarding_and_new_links_are_refused(calls, client, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(60)
        assert (await calls.end(call)).status_code == 200
    await suspend(context, call.host)
    refund = await client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**call.host.headers, "Idempotency-Key": "after-suspension"},
        json={},
    )
    assert_suspended_answer(refund)
    onboarding = await client.post("/v1/host/payouts/onboarding", headers=call.host.headers)
    assert_suspended_answer(onboarding)
    link = await client.post(
        "/v1/links",
        headers=call.host.headers,
        json={"rate_per_minute": "2.50", "window_size_minutes": 5},
    )
    assert_suspended_answer(link)
    # Its links take no new calls, and guests no longer see them.
    assert (await client.get(f"/v1/links/{call.short_code}")).status_code == 404
    assert (await calls.start(call.short_code)).status_code == 404
    assert (await ledger_of(context, call))[LedgerKind.REFUND] == 0


async def test_the_host_is_emailed_a_statement_of_what_it_is_still_owed(calls, client, context):
    async with calls.live() as (earlier, _h, _g):
        await calls.advance(450)  # 8 minutes: 20.00, 2.00 platform fee
        assert (await calls.end(earlier)).status_code == 200
    host = earlier.host
    waiting = await calls.started(host=host)
    async with calls.live(host=host) as (live, _h, _g):
        await calls.advance(60)  # 1 minute: 2.50, 0.25 platform fee
        await suspend(context, host)
    async with context.session_factory() as db:
        mail = await latest_email_to(db, host.email)
    assert mail is not None and mail.subject == STATEMENT_SUBJECT
    body = mail.body
    assert "Waiting calls declined: 1" in body
    assert "Live calls ended: 1" in body
    assert "paid out to your connected payout account" in body
    for line in ("Paid calls: 2", "Gross: $22.50", "Platform fees: $2.25", "Refunds: $0.00"):
        assert line in body, body
    assert "Net to you: $20.25" in body
    assert (await calls.session(waiting))["state"] == "declined"
    assert (await calls.session(live))["state"] == "ended"
    await assert_audit_clean(context)


async def test_suspending_twice_changes_nothing_more(calls, context):
    call = await calls.started()
    first = await suspend(context, call.host)
    async with context.session_factory() as db:
        suspended_at = (await db.get_one(User, call.host.id)).suspended_at
    again = await suspend(context, call.host)
    assert first.newly_suspended and not again.newly_suspended
    assert (again.declined_calls, again.ended_calls) == (0, 0)
    async with context.session_factory() as db:
        assert (await db.get_one(User, call.host.id)).suspended_at == suspended_at
        statements = await db.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(
                OutboxEmail.recipient == call.host.email, OutboxEmail.subject == STATEMENT_SUBJECT
            )
        )
    assert statements == 1
    assert (await calls.session(call))["state"] == "declined"
    await assert_audit_clean(context)


async def test_a_start_whose_first_hold_is_in_flight_is_released(
    calls, client, context, monkeypatch
):
    host = await calls.hosts.create()
    link = await calls.link(host, max_uses=1)
    provider = context.payments
    place_hold = provider.place_hold
    suspended: list[Suspension] = []
    holds = 0

    async def hold_while_the_host_is_suspended(request: Any, *, idempotency_key: str) -> Any:
        nonlocal holds
        holds += 1
        if holds == 1:  # the admin acts while the provider is authorizing the card
            suspended.append(await suspend(context, host))
        return await place_hold(request, idempotency_key=idempotency_key)

    monkeypatch.setattr(provider, "place_hold", hold_while_the_host_is_suspended)
    started = await calls.start(link["short_code"])
    assert started.status_code == 409, started.text
    assert started.json()["error"]["code"] == "host_unavailable"
    assert suspended[0].declined_calls == 1
    async with context.session_factory() as db:
        session = await db.scalar(select(CallSession).where(CallSession.host_id == host.id))
        stored_link = await db.get_one(Link, link["id"])
        assert session is not None
        money = await totals(db, session.id)
    assert (session.state, session.end_reason) == ("declined", "host_suspended")
    assert money[LedgerKind.HOLD] == money[LedgerKind.RELEASE] > 0
    assert money[LedgerKind.CAPTURE] == 0
    assert stored_link.use_count == 0
    await assert_audit_clean(context)


async def test_the_cli_suspension_does_all_of_it(
    calls, client, context, clock, settings, data_dir, monkeypatch
):
    waiting = await calls.started()
    host = waiting.host
    build_context = composition.build_context
    # The CLI builds its own context on the same database; it shares the test's clock.
    monkeypatch.setattr(
        composition, "build_context", lambda s, clock_=None: build_context(s, clock)
    )
    env = {
        "VIDIVO_DATA_DIR": str(data_dir),
        "VIDIVO_DATABASE_URL": settings.database_url,
        "VIDIVO_PUBLIC_BASE_URL": settings.public_base_url,
    }
    async with calls.live(host=host) as (live, _h, _g):
        await calls.advance(90)  # 2 started minutes: 5.00
        # A thread: the CLI runs its own event loop.
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["hosts", "suspend", host.email.upper()], env=env
        )
    assert result.exit_code == 0, result.output
    assert "1 waiting call(s) declined, 1 live call(s) ended" in result.output
    assert_suspended_answer(await client.get("/v1/me", headers=host.headers))
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert_suspended_answer(refreshed)
    assert_suspended_answer(
        await client.post("/v1/auth/token", json={"email": host.email, "password": PASSWORD})
    )
    accept = await client.post(
        f"/v1/sessions/{waiting.session_id}/accept", headers=bearer(host.access_token)
    )
    assert_suspended_answer(accept)
    assert (await calls.session(waiting))["state"] == "declined"
    assert (await ledger_of(context, waiting))[LedgerKind.CAPTURE] == 0
    assert (await calls.session(live))["state"] == "ended"
    assert (await ledger_of(context, live))[LedgerKind.CAPTURE] == 500
    assert (await calls.start(live.short_code)).status_code == 404
    async with context.session_factory() as db:
        mail = await latest_email_to(db, host.email)
    assert mail is not None and mail.subject == STATEMENT_SUBJECT
    assert "Gross: $5.00" in mail.body
    await assert_audit_clean(context)
    again = await asyncio.to_thread(
        CliRunner().invoke, cli, ["hosts", "suspend", host.email], env=env
    )
    assert again.exit_code == 0, again.output
    assert "already suspended" in again.output
