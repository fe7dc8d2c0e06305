"""Host payout onboarding with the simulated provider, through the API and its local page."""

from __future__ import annotations

LINK = {"rate_per_minute": "2.50", "window_size_minutes": 10}


async def test_a_new_host_has_no_payout_account(client, hosts):
    host = await hosts.create(connected=False)
    status = await client.get("/v1/host/payouts", headers=host.headers)
    assert status.status_code == 200
    assert status.json() == {
        "stripe_connected": False,
        "charges_enabled": False,
        "payouts_enabled": False,
        "details_submitted": False,
        "requirements": [],
    }


async def test_onboarding_click_through_enables_link_creation(client, hosts, settings):
    host = await hosts.create(connected=False)
    refused = await client.post("/v1/links", headers=host.headers, json=LINK)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "stripe_not_connected"

    started = await client.post("/v1/host/payouts/onboarding", headers=host.headers)
    assert started.status_code == 200
    url = started.json()["url"]
    assert url.startswith(f"{settings.public_base_url}/payouts/simulated-onboarding/acct_sim_")
    pending = (await client.get("/v1/host/payouts", headers=host.headers)).json()
    assert pending["stripe_connected"] is True
    assert pending["charges_enabled"] is False
    assert pending["requirements"]

    page = await client.get(url.removeprefix(settings.public_base_url))
    assert page.status_code == 200
    assert "Complete payout setup" in page.text
    done = await client.post(url.removeprefix(settings.public_base_url))
    assert done.status_code == 303
    assert done.headers["location"] == "https://vidivo.test/payouts/onboarding/return"

    ready = (await client.get("/v1/host/payouts", headers=host.headers)).json()
    assert ready == {
        "stripe_connected": True,
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
        "requirements": [],
    }
    assert (await client.post("/v1/links", headers=host.headers, json=LINK)).status_code == 201


async def test_onboarding_again_reuses_the_same_account(client, hosts):
    host = await hosts.create(connected=False)
    first = (await client.post("/v1/host/payouts/onboarding", headers=host.headers)).json()
    second = (await client.post("/v1/host/payouts/onboarding", headers=host.headers)).json()
    assert first["url"] == second["url"]


async def test_payouts_need_a_host_token(client):
    assert (await client.get("/v1/host/payouts")).status_code == 401
    assert (await client.post("/v1/host/payouts/onboarding")).status_code == 401


async def test_the_onboarding_page_of_an_unknown_account_is_404(client):
    response = await client.get("/payouts/simulated-onboarding/acct_sim_nope")
    assert response.status_code == 404
    assert (await client.post("/payouts/simulated-onboarding/acct_sim_nope")).status_code == 404


async def test_stripe_return_and_refresh_pages_lead_back_to_the_dashboard(client):
    # The dashboard says what happened (finished; the setup link expired) and what is next.
    done = await client.get("/payouts/onboarding/return")
    assert done.status_code == 303 and done.headers["location"].endswith("/app?payouts=done")
    expired = await client.get("/payouts/onboarding/refresh")
    assert expired.status_code == 303 and expired.headers["location"].endswith(
        "/app?payouts=expired"
    )
