"""Profile: display name and bio (shown to guests), change of email confirmed from the new
inbox, change of password."""

from __future__ import annotations

from tests.accounts.conftest import BASE, last_mail, link_in, token_of
from tests.conftest import PASSWORD, bearer

NEW_PASSWORD = "a brand new passphrase"


async def patch_me(client, host, **fields):
    return await client.patch("/v1/me", headers=host.headers, json=fields)


async def test_name_and_bio_change_and_guests_see_them_at_once(client, hosts, calls):
    host = await hosts.create(display_name="Jane Smith")
    link = await calls.link(host)
    before = await client.get(f"/v1/links/{link['short_code']}")  # cached from here on
    assert before.json()["link"]["host"] == {
        "display_name": "Jane Smith",
        "bio": None,
        "availability": "offline",
    }
    bio = "Tax adviser.\nTen years <helping> freelancers & small shops."
    changed = await patch_me(client, host, display_name="Jane S. Smith", bio=bio)
    assert changed.status_code == 200, changed.text
    user = changed.json()["user"]
    assert (user["display_name"], user["bio"]) == ("Jane S. Smith", bio)
    after = await client.get(f"/v1/links/{link['short_code']}")
    assert after.json()["link"]["host"] == {
        "display_name": "Jane S. Smith",
        "bio": bio,
        "availability": "offline",
    }
    page = await client.get(f"/c/{link['short_code']}")
    assert "Ten years &lt;helping&gt; freelancers &amp; small shops." in page.text
    assert "<helping>" not in page.text
    me = await client.get("/v1/me", headers=host.headers)
    assert me.json()["user"]["bio"] == bio


async def test_a_bio_can_be_cleared_and_fields_left_out_stay(client, hosts):
    host = await hosts.create(display_name="Jane Smith")
    await patch_me(client, host, bio="Coach")
    cleared = await patch_me(client, host, bio=None)
    assert cleared.json()["user"]["bio"] is None
    assert cleared.json()["user"]["display_name"] == "Jane Smith"
    await patch_me(client, host, bio="Coach")
    assert (await patch_me(client, host, bio="  ")).json()["user"]["bio"] is None


async def test_bad_profile_input_is_refused_with_field_details(client, hosts):
    host = await hosts.create()
    cases = [
        ({"bio": "x" * 281}, "bio"),
        ({"bio": "bell\x07"}, "bio"),
        ({"display_name": None}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"role": "admin"}, "role"),
    ]
    for body, field in cases:
        response = await patch_me(client, host, **body)
        assert response.status_code == 400, (body, response.text)
        assert field in [d["field"] for d in response.json()["error"]["details"]], body
    assert (await patch_me(client, host, bio="x" * 280)).status_code == 200
    assert (await client.patch("/v1/me", json={"bio": "hi"})).status_code == 401


async def test_a_new_email_counts_only_once_its_emailed_link_is_confirmed(client, hosts, context):
    host = await hosts.create(email="old@example.com")
    asked = await patch_me(client, host, email="New@Example.com")
    assert asked.status_code == 200, asked.text
    user = asked.json()["user"]
    assert (user["email"], user["pending_email"]) == ("old@example.com", "new@example.com")
    notice = await last_mail(context, "old@example.com")
    assert "new@example.com" in notice.body and "token=" not in notice.body
    link = link_in((await last_mail(context, "new@example.com")).body, "/confirm-email")
    # Not yet: the account still signs in with the old address only.
    pending = await client.post(
        "/v1/auth/token", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert pending.status_code == 401
    page = await client.get(link.removeprefix(BASE))
    assert page.status_code == 200
    assert f'value="{token_of(link)}"' in page.text
    confirmed = await client.post("/v1/auth/verify-email", json={"token": token_of(link)})
    assert confirmed.status_code == 200, confirmed.text
    user = confirmed.json()["user"]
    assert (user["email"], user["pending_email"]) == ("new@example.com", None)
    await hosts.login("new@example.com")
    old = await client.post(
        "/v1/auth/token", json={"email": "old@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    again = await client.post("/v1/auth/verify-email", json={"token": token_of(link)})
    assert again.status_code == 400


async def test_an_email_change_to_a_taken_address_is_a_conflict(client, hosts):
    host = await hosts.create()
    other = await hosts.create()
    taken = await patch_me(client, host, email=other.email.upper())
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "email_taken"


async def test_an_address_taken_before_the_link_is_followed_is_a_conflict(client, hosts, context):
    host = await hosts.create()
    await patch_me(client, host, email="wanted@example.com")
    link = link_in((await last_mail(context, "wanted@example.com")).body, "/confirm-email")
    await hosts.create(email="wanted@example.com")
    late = await client.post("/v1/auth/verify-email", json={"token": token_of(link)})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "email_taken"
    me = await client.get("/v1/me", headers=host.headers)
    assert me.json()["user"]["email"] == host.email


async def test_a_superseded_or_withdrawn_email_change_link_is_refused(client, hosts, context):
    host = await hosts.create()
    await patch_me(client, host, email="first@example.com")
    first = link_in((await last_mail(context, "first@example.com")).body, "/confirm-email")
    await patch_me(client, host, email="second@example.com")
    stale = await client.post("/v1/auth/verify-email", json={"token": token_of(first)})
    assert stale.status_code == 400
    second = link_in((await last_mail(context, "second@example.com")).body, "/confirm-email")
    withdrawn = await patch_me(client, host, email=host.email)
    assert withdrawn.json()["user"]["pending_email"] is None
    refused = await client.post("/v1/auth/verify-email", json={"token": token_of(second)})
    assert refused.status_code == 400
    me = await client.get("/v1/me", headers=host.headers)
    assert me.json()["user"]["email"] == host.email


async def change_password(client, host, current, new=NEW_PASSWORD):
    return await client.post(
        "/v1/me/password",
        headers=host.headers,
        json={"current_password": current, "new_password": new},
    )


async def test_changing_the_password_needs_the_current_one(client, hosts):
    host = await hosts.create()
    wrong = await change_password(client, host, "not my password")
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "wrong_password"
    await hosts.login(host.email, PASSWORD)
    weak = await change_password(client, host, PASSWORD, "short")
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "validation_error"


async def test_a_new_password_keeps_this_login_and_ends_the_others(client, hosts, context):
    host = await hosts.create()
    other_access, other_refresh = await hosts.login(host.email)
    assert (await change_password(client, host, PASSWORD)).status_code == 204
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 200
    kept = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert kept.status_code == 200
    assert (await client.get("/v1/me", headers=bearer(other_access))).status_code == 401
    ended = await client.post("/v1/auth/refresh", json={"refresh_token": other_refresh})
    assert ended.status_code == 401
    await hosts.login(host.email, NEW_PASSWORD)
    assert "password was changed" in (await last_mail(context, host.email)).subject


async def test_wrong_current_passwords_are_throttled_like_logins(client, hosts):
    host = await hosts.create()
    for _ in range(5):
        assert (await change_password(client, host, "not my password")).status_code == 403
    blocked = await change_password(client, host, PASSWORD)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0
