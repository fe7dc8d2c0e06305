"""Deleting an account: refused while a call or its money is open; then personal data is
erased, every login and link stops, and every money record stays."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.accounts.conftest import last_mail
from tests.calls.test_refund_races import FailingRefunds, post_refund, swap_provider
from tests.conftest import PASSWORD
from vidivo.auth.models import EmailVerification, User
from vidivo.calls.models import BillingWindow, CallSession, LedgerEntry
from vidivo.calls.refund_queue import RETRY_DELAY
from vidivo.mail.models import OutboxEmail
from vidivo.payments.provider import TransientPaymentError
from vidivo.payouts.models import PayoutAccount

__all__ = ["swap_provider"]


async def delete_me(client, host):
    return await client.delete("/v1/me", headers=host.headers)


async def money_records(context, host_id):
    async with context.session_factory() as db:
        sessions = await db.scalar(
            select(func.count()).select_from(CallSession).where(CallSession.host_id == host_id)
        )
        windows = await db.scalar(
            select(func.count())
            .select_from(BillingWindow)
            .join(CallSession, CallSession.id == BillingWindow.session_id)
            .where(CallSession.host_id == host_id)
        )
        ledger = list(
            await db.execute(
                select(LedgerEntry.kind, LedgerEntry.amount_cents)
                .where(LedgerEntry.host_id == host_id)
                .order_by(LedgerEntry.id)
            )
        )
        payout = await db.get(PayoutAccount, host_id)
    return sessions, windows, [tuple(row) for row in ledger], payout is not None


async def test_deletion_is_refused_while_a_call_is_live(client, calls):
    async with calls.live() as (call, _host_ws, _guest_ws):
        refused = await delete_me(client, call.host)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "call_in_progress"
        assert (await client.get("/v1/me", headers=call.host.headers)).status_code == 200
        assert (await calls.session(call))["state"] == "live"


async def test_deletion_is_refused_while_a_guest_waits_for_the_host(client, calls):
    call = await calls.started()
    refused = await delete_me(client, call.host)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "call_in_progress"


async def test_deletion_is_refused_while_a_refund_is_pending(client, calls, context, swap_provider):
    async with calls.live() as (call, _h, _g):
        await calls.advance(450)
        await calls.end(call)
    lost = FailingRefunds(
        context.payments, TransientPaymentError("timed out"), after_refunding=True
    )
    swap_provider(lost)
    assert (await post_refund(client, call, "lost", "5.00")).status_code == 502
    refused = await delete_me(client, call.host)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "money_pending"
    await calls.advance(int(RETRY_DELAY.total_seconds()) + 1)  # the worker finishes the refund
    assert (await delete_me(client, call.host)).status_code == 204


async def test_deletion_erases_personal_data_and_keeps_every_money_record(
    client, calls, context, hosts
):
    host = await hosts.create(display_name="Jane Smith", email="jane@example.com")
    await client.patch("/v1/me", headers=host.headers, json={"bio": "Tax adviser"})
    await client.patch("/v1/me", headers=host.headers, json={"email": "jane@new.example"})
    other_access, other_refresh = await hosts.login(host.email)
    link = await calls.link(host)
    async with calls.live(host=host, link=link) as (call, _h, _g):
        await calls.advance(450)
        await calls.end(call)
    await last_mail(context, host.email)  # mail was kept for this address until now
    before = await money_records(context, host.id)
    assert before[0] == 1 and before[1] >= 2 and len(before[2]) >= 4 and before[3]

    assert (await delete_me(client, host)).status_code == 204

    assert await money_records(context, host.id) == before
    async with context.session_factory() as db:
        user = await db.get_one(User, host.id)
        asked_addresses = list(
            await db.scalars(
                select(EmailVerification.new_email).where(EmailVerification.user_id == host.id)
            )
        )
        kept_mail = await db.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.recipient.in_(["jane@example.com", "jane@new.example"]))
        )
    assert user.email == f"deleted-{host.id.lower()}@deleted.invalid"
    assert (user.display_name, user.bio, user.pending_email) == ("Deleted account", None, None)
    assert user.password_hash == ""
    assert user.deleted_at is not None
    assert kept_mail == 0
    assert asked_addresses and set(asked_addresses) == {None}
    for access in (host.access_token, other_access):
        assert (
            await client.get("/v1/me", headers={"Authorization": f"Bearer {access}"})
        ).status_code == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": other_refresh})
    assert refresh.status_code == 401
    login = await client.post("/v1/auth/token", json={"email": host.email, "password": PASSWORD})
    assert login.status_code == 401
    assert (await client.get(f"/v1/links/{link['short_code']}")).status_code == 404
    # The guest's receipt still reads: the call and its charges are there.
    assert (await calls.session(call))["state"] == "ended"
    # The address is free again; a reset for it finds no account.
    again = await client.post(
        "/v1/auth/signup",
        json={"email": "jane@example.com", "password": PASSWORD, "display_name": "New Jane"},
    )
    assert again.status_code == 201


async def test_a_deleted_accounts_old_address_gets_no_reset_link(client, hosts, context):
    host = await hosts.create()
    assert (await delete_me(client, host)).status_code == 204
    assert (
        await client.post("/v1/auth/password-reset", json={"email": host.email})
    ).status_code == 202
    assert "token=" not in (await last_mail(context, host.email)).body
