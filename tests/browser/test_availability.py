"""The host's availability on the guest page, on a phone: offline while no dashboard is open,
available once the host's dashboard is, away (and no start button) after the host's switch;
and a guest whose offline host never came is told why and that nothing was charged."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import App
from tests.browser.test_card_authentication import PHONE, host_with_link

pytestmark = pytest.mark.browser


async def test_the_guest_page_shows_the_hosts_availability(app_server: App, browser: Browser):
    url = host_with_link(app_server)
    guest_context = await browser.new_context(viewport=PHONE)
    host_context = await browser.new_context(viewport=PHONE)
    guest, host = await guest_context.new_page(), await host_context.new_page()
    try:
        await guest.goto(url)
        status = guest.locator("#host-availability")
        await expect(status).to_have_text(
            "Offline — we will email the host, who has 10 minutes to join, and nothing is "
            "charged if they don't"
        )
        await expect(guest.get_by_role("button", name="Start call")).to_be_enabled()

        await host.goto(f"{app_server.base}/app")
        await host.fill("#login-email", "sca@example.com")
        await host.fill("#login-password", "correct horse battery")
        await host.click("#log-in")
        await expect(host.locator("body")).to_have_attribute("data-listening", "true")
        await guest.reload()
        await expect(status).to_have_text("Available now")

        await host.get_by_role("button", name="Away").click()
        await expect(host.locator("#availability-status")).to_contain_text("away")
        await guest.reload()
        await expect(status).to_have_text("Away — the host is not taking calls right now")
        await expect(guest.get_by_role("button", name="Start call")).to_be_disabled()

        await host.get_by_role("button", name="Available").click()
        await expect(host.locator("#availability-status")).to_contain_text("available")
        await guest.reload()
        await expect(status).to_have_text("Available now")
    finally:
        await guest_context.close()
        await host_context.close()


async def test_a_guest_whose_host_never_came_is_told_nothing_was_charged(
    app_server: App, browser: Browser
):
    url = host_with_link(app_server)
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=PHONE)
    guest = await context.new_page()
    try:
        await guest.goto(url)
        await expect(guest.locator("#host-availability")).to_contain_text("Offline")
        await guest.get_by_label("Your name").fill("Alex")
        await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
        async with guest.expect_websocket() as signaling:
            await guest.get_by_role("button", name="Start call").click()
            await guest.wait_for_url(re.compile(r"/call/[0-9A-Z]{26}$"))
        await (await signaling.value).wait_for_event("framereceived")  # the welcome: it waits
        await expect(guest.locator("#call-status")).to_contain_text("Waiting for the host")
        app_server.advance(601)  # past the 10 minutes the host had to join
        await expect(guest.locator("#call-status")).to_have_text(
            "The host did not join in time, so the call did not start. The hold on your card "
            "was released: nothing was charged."
        )
    finally:
        await context.close()
