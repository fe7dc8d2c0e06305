"""Password reset by email: a single-use, expiring link; every login ends; the answer never
tells whether an account exists."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select

from tests.accounts.conftest import BASE, last_mail, link_in, token_of
from tests.conftest import PASSWORD, bearer
from vidivo.auth.models import PasswordReset

NEW_PASSWORD = "a brand new passphrase"


async def ask_reset(client, email):
    return await client.post("/v1/auth/password-reset", json={"email": email})


async def confirm(client, token, password=NEW_PASSWORD):
    return await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def emailed_reset_token(client, context, email):
    response = await ask_reset(client, email)
    assert response.status_code == 202, response.text
    return token_of(link_in((await last_mail(context, email)).body, "/reset-password"))


async def test_a_known_and_an_unknown_email_get_the_same_answer(client, hosts, context):
    host = await hosts.create()
    known = await ask_reset(client, host.email)
    unknown = await ask_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content == b""
    assert known.headers.get("content-type") == unknown.headers.get("content-type")
    # Both did the same work: one email each; only the account's carries a reset link.
    assert "/reset-password?token=" in (await last_mail(context, host.email)).body
    note = await last_mail(context, "nobody@example.com")
    assert "no Vidivo account" in note.body
    assert "token=" not in note.body


async def test_the_emailed_link_sets_a_new_password_and_ends_every_login(client, hosts, context):
    host = await hosts.create()
    other_access, other_refresh = await hosts.login(host.email)
    await ask_reset(client, host.email)
    link = link_in((await last_mail(context, host.email)).body, "/reset-password")
    page = await client.get(link.removeprefix(BASE))
    assert page.status_code == 200
    assert f'value="{token_of(link)}"' in page.text
    assert 'id="reset-form"' in page.text
    assert (await confirm(client, token_of(link))).status_code == 204
    for access in (host.access_token, other_access):
        assert (await client.get("/v1/me", headers=bearer(access))).status_code == 401
    for refresh in (host.refresh_token, other_refresh):
        again = await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
        assert again.status_code == 401
    old = await client.post("/v1/auth/token", json={"email": host.email, "password": PASSWORD})
    assert old.status_code == 401
    await hosts.login(host.email, NEW_PASSWORD)
    assert "password was changed" in (await last_mail(context, host.email)).subject


async def test_a_reset_token_works_once(client, hosts, context):
    host = await hosts.create()
    token = await emailed_reset_token(client, context, host.email)
    assert (await confirm(client, token)).status_code == 204
    reused = await confirm(client, token, "yet another passphrase")
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "invalid_token"
    await hosts.login(host.email, NEW_PASSWORD)


async def test_an_expired_reset_token_is_refused(client, hosts, context, clock):
    host = await hosts.create()
    token = await emailed_reset_token(client, context, host.email)
    clock.advance(3600 + 1)
    expired = await confirm(client, token)
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "invalid_token"
    await hosts.login(host.email, PASSWORD)


async def test_a_reset_token_within_its_hour_still_works(client, hosts, context, clock):
    host = await hosts.create()
    token = await emailed_reset_token(client, context, host.email)
    clock.advance(3600 - 5)
    assert (await confirm(client, token)).status_code == 204


async def test_a_newer_reset_link_replaces_the_older_one(client, hosts, context):
    host = await hosts.create()
    first = await emailed_reset_token(client, context, host.email)
    second = await emailed_reset_token(client, context, host.email)
    assert (await confirm(client, first)).json()["error"]["code"] == "invalid_token"
    assert (await confirm(client, second)).status_code == 204


async def test_an_unknown_token_is_refused_and_a_weak_password_keeps_the_token(
    client, hosts, context
):
    host = await hosts.create()
    unknown = await confirm(client, "not-a-real-token")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid_token"
    token = await emailed_reset_token(client, context, host.email)
    weak = await confirm(client, token, "short")
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "validation_error"
    assert (await confirm(client, token)).status_code == 204


async def test_only_the_tokens_hash_is_stored(client, hosts, context):
    host = await hosts.create()
    token = await emailed_reset_token(client, context, host.email)
    async with context.session_factory() as db:
        stored = list(await db.scalars(select(PasswordReset.token_hash)))
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


async def test_reset_requests_are_throttled_alike_for_known_and_unknown_emails(client, hosts, app):
    host = await hosts.create()
    # Each email from its own address, so only the per-email limit is reached.
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        for http, email in ((client, host.email), (other, "nobody@example.com")):
            statuses = [(await ask_reset(http, email)).status_code for _ in range(6)]
            assert statuses == [202] * 5 + [429], email
    limited = await ask_reset(client, host.email)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


async def test_reset_confirmations_from_one_address_are_capped_per_minute(client):
    statuses = [(await confirm(client, f"guess-{n}")).status_code for n in range(12)]
    assert statuses == [400] * 10 + [429, 429]
