"""A card whose bank asks for 3-D Secure, on a phone: the guest answers the (simulated) bank's
challenge and lands in the call, waiting for the host."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import App

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def verification_token(app: App) -> str:
    """The emailed token, once the outbox has sent it (mail is delivered in the background)."""
    for _ in range(100):
        if "Verification token: " in app.server.output():
            return app.last_verification_token()
        time.sleep(0.1)
    return app.last_verification_token()  # fails, saying why


def host_with_link(app: App) -> str:
    """A ready host and a link, made over the API: this test is about the guest."""
    with httpx.Client(base_url=app.base) as http:
        account = {"email": "sca@example.com", "password": "correct horse battery"}
        signup = http.post("/v1/auth/signup", json={**account, "display_name": "Dr. Rivera"})
        assert signup.status_code == 201, signup.text
        verify = http.post("/v1/auth/verify-email", json={"token": verification_token(app)})
        assert verify.status_code == 200, verify.text
        token = http.post("/v1/auth/token", json=account).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        onboarding = http.post("/v1/host/payouts/onboarding", headers=headers).json()["url"]
        assert http.post(onboarding).status_code == 303
        link = http.post(
            "/v1/links", headers=headers, json={"rate_per_minute": "2.50", "window_size_minutes": 5}
        )
        assert link.status_code == 201, link.text
        return str(link.json()["link"]["url"])


async def test_a_guest_authenticates_a_3ds_card_and_waits_for_the_host(
    app_server: App, browser: Browser
):
    url = host_with_link(app_server)
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=PHONE)
    guest = await context.new_page()
    try:
        await guest.goto(url)
        await guest.get_by_label("Your name").fill("Alex")
        await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
        await guest.get_by_label("Card").select_option(
            label="Visa •••• 3155 (asks for 3-D Secure once)"
        )
        await guest.get_by_role("button", name="Start call").click()

        # The bank's challenge (played by the app with simulated payments), then the call.
        await guest.wait_for_url(re.compile(r"/simulated/3ds/pi_sim_"))
        await expect(guest.get_by_role("heading", name="Confirm this payment")).to_be_visible()
        await expect(guest.locator("main")).to_contain_text("$12.50")
        await guest.get_by_role("button", name="Complete authentication").click()
        await guest.wait_for_url(re.compile(r"/call/[0-9A-Z]{26}$"))
        await expect(guest.locator("#call-status")).to_contain_text("Waiting for the host")
        state = await guest.evaluate("window.vidivoCall.snapshot()")
        assert (state["state"], state["awaiting_authentication"]) == ("waiting_for_host", False)
    finally:
        await context.close()
