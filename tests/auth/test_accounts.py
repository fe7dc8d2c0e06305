"""Sign-up, email verification, login, refresh rotation, logout, /v1/me."""

from __future__ import annotations

import asyncio

from tests.conftest import PASSWORD, bearer


async def signup(client, email="alex@example.com", password=PASSWORD, name="Alex Doe"):
    return await client.post(
        "/v1/auth/signup", json={"email": email, "password": password, "display_name": name}
    )


async def test_signup_creates_an_unverified_host_and_emails_a_token(client, hosts):
    response = await signup(client, email="Alex@Example.com")
    assert response.status_code == 201
    user = response.json()["user"]
    assert user["email"] == "alex@example.com"
    assert user["role"] == "host"
    assert user["email_verified"] is False
    assert len(user["id"]) == 26
    assert user["created_at"] == "2026-03-15T10:00:00Z"
    assert await hosts.verification_token("alex@example.com")


async def test_signup_with_a_taken_email_is_a_conflict_whatever_the_case(client):
    assert (await signup(client)).status_code == 201
    again = await signup(client, email="ALEX@example.com")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


async def test_signup_rejects_bad_input_with_field_details(client):
    cases = [
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": " " * 12, "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "  "}, "display_name"),
        ({"email": "a@example.com", "password": PASSWORD}, "display_name"),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "A", "admin": True},
            "admin",
        ),
        ({"email": "a@example.com", "password": 1234567890123, "display_name": "A"}, "password"),
    ]
    for body, field in cases:
        response = await client.post("/v1/auth/signup", json=body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in [d["field"] for d in error["details"]], (body, error)
    login = await client.post(
        "/v1/auth/token", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401  # nothing was created


async def test_login_returns_a_bearer_pair_that_reaches_me(client, hosts):
    await signup(client)
    response = await client.post(
        "/v1/auth/token", json={"email": "ALEX@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    me = await client.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "alex@example.com"
    assert me.json()["user"]["display_name"] == "Alex Doe"


async def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    await signup(client)
    wrong = await client.post(
        "/v1/auth/token", json={"email": "alex@example.com", "password": "wrong password!"}
    )
    unknown = await client.post(
        "/v1/auth/token", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"]
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_repeated_failed_logins_are_throttled_with_retry_after(client):
    await signup(client)
    for _ in range(5):
        response = await client.post(
            "/v1/auth/token", json={"email": "alex@example.com", "password": "wrong password!"}
        )
        assert response.status_code == 401
    blocked = await client.post(
        "/v1/auth/token", json={"email": "alex@example.com", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0


async def test_login_attempts_from_one_address_are_capped_per_minute(client):
    statuses = []
    for n in range(12):
        response = await client.post(
            "/v1/auth/token", json={"email": f"user{n}@example.com", "password": "whatever!!"}
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


async def test_verify_email_marks_the_account_verified_once(client, hosts):
    await signup(client)
    token = await hosts.verification_token("alex@example.com")
    verified = await client.post("/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200
    assert verified.json()["user"]["email_verified"] is True
    reused = await client.post("/v1/auth/verify-email", json={"token": token})
    assert reused.status_code == 400
    assert reused.json()["error"]["details"][0]["field"] == "token"


async def test_a_wrong_or_expired_verification_token_is_refused(client, hosts, clock):
    await signup(client)
    wrong = await client.post("/v1/auth/verify-email", json={"token": "not-a-real-token"})
    assert wrong.status_code == 400
    token = await hosts.verification_token("alex@example.com")
    clock.advance(24 * 3600 + 1)
    expired = await client.post("/v1/auth/verify-email", json={"token": token})
    assert expired.status_code == 400
    access, _ = await hosts.login("alex@example.com")
    me = await client.get("/v1/me", headers=bearer(access))
    assert me.json()["user"]["email_verified"] is False


async def test_resend_sends_a_fresh_token_that_works(client, hosts):
    await signup(client)
    first = await hosts.verification_token("alex@example.com")
    access, _ = await hosts.login("alex@example.com")
    resent = await client.post("/v1/auth/verify-email/resend", headers=bearer(access))
    assert resent.status_code == 202
    second = await hosts.verification_token("alex@example.com")
    assert second != first
    assert (await client.post("/v1/auth/verify-email", json={"token": second})).status_code == 200
    again = await client.post("/v1/auth/verify-email/resend", headers=bearer(access))
    assert again.status_code == 400  # already verified


async def test_refresh_rotates_and_the_old_token_stops_working(client, hosts):
    host = await hosts.create()
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert rotated.status_code == 200
    pair = rotated.json()
    assert pair["refresh_token"] != host.refresh_token
    assert (await client.get("/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
    next_pair = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert next_pair.status_code == 200


async def test_a_reused_refresh_token_ends_the_whole_login(client, hosts):
    host = await hosts.create()
    rotated = (
        await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    ).json()
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert replay.status_code == 401
    # The thief's replay revoked the family: the legitimate newer tokens die too.
    newer = await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newer.status_code == 401
    me = await client.get("/v1/me", headers=bearer(rotated["access_token"]))
    assert me.status_code == 401


async def test_concurrent_refreshes_with_one_token_yield_one_new_pair(client, hosts):
    host = await hosts.create()
    responses = await asyncio.gather(
        *[
            client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
            for _ in range(4)
        ]
    )
    assert sorted(r.status_code for r in responses).count(200) == 1


async def test_an_expired_refresh_token_is_refused(client, hosts, clock):
    host = await hosts.create()
    clock.advance(31 * 86400)
    response = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert response.status_code == 401


async def test_logout_ends_both_the_access_and_refresh_token(client, hosts):
    host = await hosts.create()
    assert (await client.post("/v1/auth/logout", headers=host.headers)).status_code == 204
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert refresh.status_code == 401


async def test_logging_out_one_login_keeps_the_others(client, hosts):
    host = await hosts.create()
    other_access, _ = await hosts.login(host.email)
    await client.post("/v1/auth/logout", headers=host.headers)
    assert (await client.get("/v1/me", headers=bearer(other_access))).status_code == 200


async def test_me_needs_a_token(client):
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
