"""Who may do what: every endpoint × every kind of caller, from one table.

Each row names an endpoint, the call it is made on, and the status each caller gets. Denied
callers go first, so the allowed call (which may change state) runs last; and no response to
someone who may not see the call or the link carries any of its details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import bearer
from tests.sessions.conftest import Calls
from vidivo.auth.models import User

CALLERS = [
    "anonymous",
    "guest",  # the guest of the call the row is about
    "other_guest",  # the guest of someone else's call
    "other_host",
    "unverified_host",
    "suspended_host",
    "admin",
    "owner",  # the host of the link and the call
]
SECRETS = ["SECRET-LABEL-7f3", "Sentinel Guest", "sentinel.guest@example.com", "owner7f3@"]


@dataclass
class Row:
    method: str
    path: str  # {code}, {link_id}, {session} are filled in
    expect: dict[str, int | None]
    body: dict[str, Any] | None = None
    call: str = "main"  # which call {session} and the guest token refer to


def row(method, path, anonymous, guest, other_guest, hosts_, unverified, suspended, admin, owner,
        body=None, call="main"):  # fmt: skip
    return Row(
        method,
        path,
        {
            "anonymous": anonymous,
            "guest": guest,
            "other_guest": other_guest,
            "other_host": hosts_,
            "unverified_host": unverified,
            "suspended_host": suspended,
            "admin": admin,
            "owner": owner,
        },
        body,
        call,
    )


LINK_BODY = {"rate_per_minute": "2.50", "window_size_minutes": 10}
TABLE = [
    #   method  path                                 anon guest oguest host unver susp admin owner
    row("GET", "/v1/me",                              401, 401, 401, 200, 200, 403, 200, 200),
    row("GET", "/v1/links",                           401, 401, 401, 200, 200, 403, 403, 200),
    row("POST", "/v1/links",                          401, 401, 401, 201, 403, 403, 403, 201,
        body=LINK_BODY),
    row("GET", "/v1/links/{code}",                    200, 401, 401, 200, 200, 403, 200, 200),
    row("GET", "/v1/sessions",                        401, 401, 401, 200, 200, 403, 403, 200),
    row("GET", "/v1/sessions/{session}",              401, 200, 404, 404, 404, 403, 200, 200),
    row("GET", "/v1/sessions/{session}/charges",      401, 200, 404, 404, 404, 403, 200, 200),
    row("GET", "/v1/sessions/{session}/receipt",      401, 200, 404, 404, 404, 403, 200, 200),
    row("GET", "/v1/sessions/{session}/ice-servers",  401, 200, 404, 404, 404, 403, 404, 200),
    row("GET", "/v1/earnings",                        401, 401, 401, 200, 200, 403, 403, 200),
    row("GET", "/v1/host/payouts",                    401, 401, 401, 200, 200, 403, 403, 200),
    row("GET", "/v1/host/payouts/history",            401, 401, 401, 200, 200, 403, 403, 200),
    row("POST", "/v1/sessions/{session}/accept",      401, 401, 401, 404, 404, 403, 403, 200,
        call="accept"),
    row("POST", "/v1/sessions/{session}/decline",     401, 401, 401, 404, 404, 403, 403, 200,
        call="decline"),
    row("POST", "/v1/sessions/{session}/payment-method", 401, 200, 404, 403, 403, 403, 403, 403,
        body={"payment_method_id": "pm_card_mastercard"}, call="card"),
    row("POST", "/v1/sessions/{session}/payment/confirm", 401, 200, 404, 403, 403, 403, 403, 403),
    # The call's guest may end it too: that is the next row (None: not asked here).
    row("POST", "/v1/sessions/{session}/end",         401, None, 404, 404, 404, 403, 404, 200,
        call="end_by_host"),
    row("POST", "/v1/sessions/{session}/end",         401, 200, 404, 404, 404, 403, 404, 409,
        call="end_by_guest"),
    row("DELETE", "/v1/links/{link_id}",              401, 401, 401, 403, 403, 403, 403, 204),
    row("PATCH", "/v1/me",                            401, 401, 401, 200, 200, 403, 200, 200,
        body={"bio": "Coach"}),
    row("POST", "/v1/me/password",                    401, 401, 401, 403, 403, 403, 403, 403,
        body={"current_password": "not the password", "new_password": "another passphrase"}),
    # The owner's calls are under way: its account cannot be deleted yet.
    row("DELETE", "/v1/me",                           401, 401, 401, 204, 204, 403, 204, 409),
]  # fmt: skip


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"test_clock": True})


async def _set(context, user_id: str, **values: Any) -> None:
    async with context.session_factory() as db:
        await db.execute(update(User).where(User.id == user_id).values(**values))
        await db.commit()


@pytest.fixture
async def world(client, hosts, app, context, clock):
    calls = Calls(client, hosts, app)
    owner = await hosts.create(email="owner7f3@example.com")
    link = await calls.link(owner, label="SECRET-LABEL-7f3")
    guest = {"guest_name": "Sentinel Guest", "guest_email": "sentinel.guest@example.com"}
    sessions = {}
    for name in ("main", "accept", "decline", "card", "end_by_host", "end_by_guest"):
        started = await calls.start(link["short_code"], **guest)
        assert started.status_code == 201, started.text
        sessions[name] = started.json()
    for name in ("end_by_host", "end_by_guest"):  # a call that is going on
        await client.post(
            f"/v1/sessions/{sessions[name]['session']['id']}/accept", headers=owner.headers
        )
    stranger = await hosts.create()
    other_call = await calls.start((await calls.link(stranger))["short_code"])
    other_host = await hosts.create()
    unverified = await hosts.create(verified=False, connected=False)
    suspended = await hosts.create()
    await _set(context, suspended.id, suspended_at=clock.now())
    admin = await hosts.create()
    await _set(context, admin.id, role="admin")
    tokens = {
        "anonymous": None,
        "other_guest": other_call.json()["guest_token"],
        "other_host": other_host.access_token,
        "unverified_host": unverified.access_token,
        "suspended_host": suspended.access_token,
        "admin": admin.access_token,
        "owner": owner.access_token,
    }
    return {"link": link, "sessions": sessions, "tokens": tokens}


@pytest.mark.parametrize("entry", TABLE, ids=[f"{r.method} {r.path} ({r.call})" for r in TABLE])
async def test_each_caller_gets_exactly_the_expected_status_and_nothing_more(
    client, world, entry: Row
):
    call = world["sessions"][entry.call]
    path = entry.path.format(
        code=world["link"]["short_code"],
        link_id=world["link"]["id"],
        session=call["session"]["id"],
    )
    for caller in CALLERS:  # the owner last: the allowed call may change what it acts on
        if entry.expect[caller] is None:
            continue
        token = call["guest_token"] if caller == "guest" else world["tokens"][caller]
        headers = bearer(token) if token else {}
        if entry.method == "POST" and entry.path == "/v1/links":
            headers["Idempotency-Key"] = f"matrix-{caller}"
        response = await client.request(entry.method, path, headers=headers, json=entry.body)
        expected = entry.expect[caller]
        assert response.status_code == expected, (caller, response.status_code, response.text)
        may_see = caller in ("owner", "guest", "admin") and response.status_code < 300
        if not may_see:
            for secret in SECRETS:
                assert secret not in response.text, (caller, secret, response.text)
            assert call["session"]["id"] not in response.text, (caller, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}, response.text


async def test_lists_show_only_the_callers_own_links_and_calls(client, world):
    session_id = world["sessions"]["main"]["session"]["id"]
    # A suspended host's token is refused outright (the table's `susp` column).
    for caller in ("other_host", "unverified_host"):
        headers = bearer(world["tokens"][caller])
        links = (await client.get("/v1/links", headers=headers)).json()
        assert world["link"]["id"] not in str(links)
        calls = (await client.get("/v1/sessions", headers=headers)).json()
        assert session_id not in str(calls) and calls["sessions"] == []
    owner = bearer(world["tokens"]["owner"])
    assert session_id in str((await client.get("/v1/sessions?limit=100", headers=owner)).json())
